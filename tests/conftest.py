"""Test infrastructure: one fresh database per run built by `alembic upgrade head`, real Redis with a
private queue, the real ASGI app through httpx. Data isolation between tests comes from each test
building its own areas (unique codes), never from sharing rows."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fupin.db import app_url, make_engine, make_sessionmaker
from fupin.devservers import port_open, start_embedded_postgres, start_embedded_redis
from fupin.migrate import upgrade
from fupin.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _admin_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    if port_open("127.0.0.1", 5432):
        return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    return start_embedded_postgres(ROOT / ".data" / "test-pg", database="postgres")


def _redis_url() -> str:
    if url := os.environ.get("TEST_REDIS_URL"):
        return url
    if port_open("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    url, _ = start_embedded_redis(ROOT / ".data" / "test-redis", port=6391)
    return url


async def _admin_exec(admin: str, sql: str) -> None:
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@pytest.fixture(scope="session")
def test_settings() -> Iterator[Settings]:
    admin = _admin_url()
    name = f"fupin_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_exec(admin, f'CREATE DATABASE "{name}"'))
    owner = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(owner)
    settings = Settings(
        environment="test",
        database_url=owner,
        redis_url=_redis_url(),
        queue_name=f"fupin:test:{uuid.uuid4().hex[:8]}",
        jwt_secret="test-secret-" + "x" * 32,
        job_stale_seconds=0,
    )
    os.environ.update({
        "FUPIN_DATABASE_URL": settings.database_url,
        "FUPIN_REDIS_URL": settings.redis_url,
        "FUPIN_QUEUE_NAME": settings.queue_name,
        "FUPIN_JWT_SECRET": settings.jwt_secret,
        "FUPIN_ENVIRONMENT": "test",
    })
    from fupin.settings import get_settings

    get_settings.cache_clear()
    yield settings
    asyncio.run(_admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def owner_sessionmaker(test_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Connects as the table owner (a superuser here): for arranging data, bypassing RLS."""
    engine = make_engine(test_settings.database_url, name="fupin-tests-owner", pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_sessionmaker(test_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Connects as the non-owner app role, like the API and worker: RLS applies."""
    engine = make_engine(app_url(test_settings), name="fupin-tests-app", pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def app(test_settings: Settings) -> AsyncIterator[object]:
    from fupin_api.main import create_app

    application = create_app(test_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
