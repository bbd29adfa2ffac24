"""Test infrastructure: one fresh database per run built by `alembic upgrade head`, real Redis with a
private queue, the real ASGI app through httpx.

Isolation rules (the suite must pass on a busy machine, next to other runs on the same servers):
- data: each test builds its own areas (`tests.factories.new_county`, unique codes) and periods, never
  relying on an empty database or on rows another test made;
- workers: a test that starts a worker gives it a queue of its own and confines it to the test's own
  county (`private_worker_settings`), so it never executes, waits behind or counts another test's runs;
  the platform-wide schedule is ticked only by tests that call it directly, at dates no other test uses;
- Redis: the queues this run made, and the arq keys of its runs, are deleted when the run ends;
- pools: small (`db_pool_size=4`), because the PostgreSQL server is shared (max_connections 100);
- time: tests wait for observed progress with generous bounds, never for a guessed wall-clock delay.
"""

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


DISTRIBUTED = os.environ.get("FUPIN_DISTRIBUTED", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def test_settings() -> Iterator[Settings]:
    admin = _admin_url()
    if DISTRIBUTED:
        # `make test-distributed`: TEST_DATABASE_URL is a fresh Citus coordinator's database (a new database
        # would lack the extension on the workers), migrated and then distributed by county.
        name = ""
        owner = admin
        upgrade(owner)
        from fupin.distribution import distribute

        asyncio.run(distribute(owner))
    else:
        name = f"fupin_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin_exec(admin, f'CREATE DATABASE "{name}"'))
        owner = make_url(admin).set(database=name).render_as_string(hide_password=False)
        upgrade(owner)
    settings = Settings(
        environment="test",
        distributed=DISTRIBUTED,
        database_url=owner,
        redis_url=_redis_url(),
        queue_name=f"fupin:test:{uuid.uuid4().hex[:8]}",
        jwt_secret="test-secret-" + "x" * 32,
        db_pool_size=4,
        # Every test logs in from 127.0.0.1: the throttles are exercised by their own tests
        # (tests/platform/test_throttle.py), with limits of their own, not by the whole suite's logins.
        login_rate_per_user=1_000_000,
        login_rate_per_address=1_000_000,
        bank_rate_per_client=1_000_000,
        bank_failures_per_address=1_000_000,
        bank_failures_per_client=1_000_000,
        throttle_key_prefix=f"fupin:test:{uuid.uuid4().hex[:8]}:throttle",
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
    asyncio.run(_purge_redis(settings))
    if name:
        asyncio.run(_admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_PRIVATE_QUEUES: list[str] = []


def private_worker_settings(settings: Settings, area_code: str, **overrides: object) -> Settings:
    """Settings for a worker that only this test feeds: its own arq queue, confined to the test's area."""
    queue = f"{settings.queue_name}:{uuid.uuid4().hex[:8]}"
    _PRIVATE_QUEUES.append(queue)
    return settings.model_copy(update={"queue_name": queue, "worker_area": area_code, **overrides})


async def _purge_redis(settings: Settings) -> None:
    """Delete this run's queues and the arq job, result, retry and in-progress keys of its runs."""
    from redis.asyncio import Redis
    from sqlalchemy import select

    from fupin.jobs import JobRun

    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        runs = (await conn.execute(select(JobRun.key, JobRun.enqueues))).all()
    await engine.dispose()
    ids = [f"{key}#{n}" if n else key for key, enqueues in runs for n in range(enqueues + 2)]
    redis = Redis.from_url(settings.redis_url)
    try:
        names = [f"{prefix}{i}" for i in ids for prefix in ("arq:job:", "arq:result:", "arq:retry:", "arq:in-progress:")]
        for queue in [settings.queue_name, *_PRIVATE_QUEUES]:
            names += [queue, f"{queue}:health"]
        names += [key async for key in redis.scan_iter(match=f"{settings.throttle_key_prefix}:*", count=1000)]
        for start in range(0, len(names), 5000):
            await redis.delete(*names[start:start + 5000])
    finally:
        await redis.aclose()


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


# Known gaps on the Citus cluster (deploy/SCALING.md, step 5, "not done yet"), expected to fail there and
# strict, so a fix shows up as an unexpected pass to be removed from this list.
_CITUS_GAPS = {
    "bank batches (bulk and file postings): their INSERT … SELECT statements are not co-located, so Citus "
    "copies them into the shards through the coordinator, and COPY is refused under row-level security": (
        "tests/loans/test_bank.py::TestEvents::test_bulk_with_mixed_good_and_bad_events",
        "tests/loans/test_bank.py::TestReadsAndReports::test_notice_quarterly_reports_and_reconciliation",
        "tests/loans/test_bank_equivalence.py::test_bulk_and_file_answer_every_event_as_one_by_one_posting",
        "tests/loans/test_bank_files.py::TestUpload::test_a_bad_signature_keeps_nothing",
        "tests/loans/test_bank_files.py::TestProcessing::test_bad_lines_are_refused_one_by_one_and_the_rest_applied",
        "tests/loans/test_bank_files.py::TestProcessing::test_results_page_in_line_order_and_files_are_private_to_",
        "tests/loans/test_bank_batches.py::TestBulkLimits::test_a_thousand_repayments_in_one_request",
        "tests/loans/test_bank_batches.py::TestBulkLimits::test_same_event_id_twice_in_one_batch_applies_once",
        "tests/loans/test_quarterly_report_basis.py::TestStationQuarterlyReport::test_actual_amounts_and_partial_",
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not DISTRIBUTED:
        return
    for reason, prefixes in _CITUS_GAPS.items():
        for item in items:
            if item.nodeid.startswith(prefixes):
                item.add_marker(pytest.mark.xfail(reason=f"Citus: {reason}", strict=True))
