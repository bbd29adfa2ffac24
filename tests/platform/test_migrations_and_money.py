from __future__ import annotations

import json
import uuid
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fupin.migrate import downgrade, upgrade
from fupin.money import round_fen, split_exact
from fupin_worker.main import _dumps, _loads


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


def test_money_round_trips_exactly_through_job_serializer():
    payload = {"a": Decimal("0.10"), "b": Decimal("0.20")}
    back = _loads(_dumps(payload))
    assert Decimal(back["a"]) + Decimal(back["b"]) == Decimal("0.30")


async def test_money_round_trips_exactly_through_the_api_json(client):
    from fupin.schema import FupinSchema

    class M(FupinSchema):
        amount: Decimal

    dumped = json.loads(M(amount=Decimal("0.10")).model_dump_json())
    assert dumped["amount"] == "0.10"


def test_round_fen_is_half_up():
    assert round_fen(Decimal("255.875")) == Decimal("255.88")
    assert round_fen(Decimal("0.005")) == Decimal("0.01")
    assert round_fen(Decimal("0.0049")) == Decimal("0.00")


def test_split_exact_reference_case_and_leftover_fen():
    parts = split_exact(Decimal("108000.00"), [Decimal(1)] * 72)
    assert set(parts) == {Decimal("1500.00")}
    parts = split_exact(Decimal("100.00"), [Decimal(1)] * 3)
    assert parts == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert sum(parts) == Decimal("100.00")
