"""Migrations: upgrade, downgrade and upgrade again on an empty database."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fupin.migrate import downgrade, upgrade


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def test_upgrade_downgrade_upgrade_on_an_empty_database(test_settings):
    import asyncio

    name = f"fupin_mig_{uuid.uuid4().hex[:8]}"
    admin = make_url(test_settings.database_url).set(database="postgres").render_as_string(hide_password=False)
    await _admin(admin, f'CREATE DATABASE "{name}"')
    url = make_url(test_settings.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, upgrade, url)
        await loop.run_in_executor(None, downgrade, url)
        await loop.run_in_executor(None, upgrade, url)
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            tables = set((await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars())
        await engine.dispose()
        assert {"area", "app_user", "audit_event", "job_run", "household", "loan", "journal_line"} <= tables
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
