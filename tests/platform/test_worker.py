"""API → Redis → worker → PostgreSQL, duplicate delivery, two workers, missed crons, and SIGKILL mid-job.

Every worker here has a queue of its own and is confined to the test's county (`private_worker_settings`),
so it sees only the test's runs however many other tests ran before it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker
from sqlalchemy import func, select

from fupin import jobs
from fupin.audit.models import AuditEvent
from fupin.auth.roles import Role
from fupin.settings import Settings
from fupin_worker import main as worker_main
from fupin_worker.kinds import SCHEDULE
from fupin_worker.runner import execute
from fupin_worker.schedule import ensure_due_runs
from tests.conftest import private_worker_settings
from tests.factories import County, new_county, token_for

pytestmark = pytest.mark.slow


def _worker(settings: Settings, **kw: Any) -> Worker:
    return Worker(
        functions=[worker_main.run_job],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=settings.queue_name,
        on_startup=worker_main.startup,
        on_shutdown=worker_main.shutdown,
        burst=True,
        poll_delay=0.05,
        ctx={"settings": settings},
        handle_signals=False,
        job_serializer=worker_main._dumps,
        job_deserializer=worker_main._loads,
        **kw,
    )


async def _verified_rows(sm, key: str) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "audit.verified", AuditEvent.entity_id == key)) or 0)


async def _run(sm, key: str) -> jobs.JobRun:
    async with sm() as s:
        run = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key))
        assert run is not None
        return run


async def _wait_for(check: Callable[[], Awaitable[bool]], *, what: str, timeout: float = 120) -> None:
    """Poll observed progress; the bound is generous because CI may run on a loaded machine."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _trigger(client: httpx.AsyncClient, owner_sessionmaker, test_settings, county: County) -> str:
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    r = await client.post("/jobs/audit-verify", headers=hdr)
    assert r.status_code == 202, r.text
    assert r.json()["area_code"] == county.code
    return str(r.json()["key"])


@pytest.fixture
async def county(owner_sessionmaker) -> County:
    return await new_county(owner_sessionmaker, townships=1, villages=1)


@pytest.fixture
async def queue_pool(test_settings) -> AsyncIterator[Callable[[Settings], Awaitable[ArqRedis]]]:
    pools: list[ArqRedis] = []

    async def open_pool(settings: Settings) -> ArqRedis:
        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.queue_name,
                                 job_serializer=worker_main._dumps, job_deserializer=worker_main._loads)
        pools.append(pool)
        return pool

    yield open_pool
    for pool in pools:
        await pool.aclose()


async def test_api_to_redis_to_worker_to_postgres(owner_sessionmaker, test_settings, county):
    from fupin_api.main import create_app

    settings = private_worker_settings(test_settings, county.code)
    app = create_app(settings)  # an API that enqueues to this test's queue
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        key = await _trigger(client, owner_sessionmaker, test_settings, county)
    assert (await _run(owner_sessionmaker, key)).enqueued_at is not None  # the API handed it to arq
    worker = _worker(settings)
    await worker.main()
    await worker.close()
    run = await _run(owner_sessionmaker, key)
    assert run.status == "done"
    assert run.result is not None
    assert run.result["ok"] is True
    assert await _verified_rows(owner_sessionmaker, key) == 1


async def test_duplicate_delivery_and_rerun_do_nothing_twice(
    client, owner_sessionmaker, app_sessionmaker, test_settings, county, queue_pool
):
    key = await _trigger(client, owner_sessionmaker, test_settings, county)
    settings = private_worker_settings(test_settings, county.code)
    pool = await queue_pool(settings)
    # Same arq id: refused by arq (the API enqueued it already); other ids: delivered, and the database
    # key makes every delivery after the first a no-op that is not counted as an attempt.
    assert await pool.enqueue_job("run_job", key, _job_id=key) is None
    for n in range(3):
        assert await pool.enqueue_job("run_job", key, _job_id=f"{key}#dup{n}") is not None
    w1, w2 = _worker(settings), _worker(settings)
    await asyncio.gather(w1.main(), w2.main())
    await w1.close()
    await w2.close()
    await pool.delete(*(f"arq:result:{key}#dup{n}" for n in range(3)))
    assert await _verified_rows(owner_sessionmaker, key) == 1
    assert await execute(app_sessionmaker, settings, key) == "already_done"
    run = await _run(owner_sessionmaker, key)
    assert (run.status, run.attempts) == ("done", 1)


async def test_confined_worker_leaves_other_areas_runs_alone(
    client, owner_sessionmaker, app_sessionmaker, test_settings, county
):
    other = await new_county(owner_sessionmaker, townships=1, villages=1)
    key = await _trigger(client, owner_sessionmaker, test_settings, other)
    settings = private_worker_settings(test_settings, county.code)
    assert await execute(app_sessionmaker, settings, key) == "foreign"
    run = await _run(owner_sessionmaker, key)
    assert (run.status, run.attempts) == ("pending", 0)


async def test_scheduled_run_is_created_once_by_concurrent_ticks(owner_sessionmaker, app_sessionmaker, test_settings):
    now = datetime(2033, 2, 7, 1, 0, tzinfo=UTC)

    async def tick() -> list[str]:
        async with owner_sessionmaker() as s, s.begin():
            return await ensure_due_runs(s, SCHEDULE, now=now, tz=test_settings.timezone)

    results = await asyncio.gather(*(tick() for _ in range(3)), return_exceptions=True)
    created = [k for r in results if isinstance(r, list) for k in r]
    assert created.count("audit.verify:daily:2033-02-07") == 1
    async with owner_sessionmaker() as s:
        n = await s.scalar(select(func.count()).select_from(jobs.JobRun).where(
            jobs.JobRun.key == "audit.verify:daily:2033-02-07"))
    assert n == 1


def _spawn_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "fupin_worker.main.WorkerSettings"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_sigkill_mid_job_is_recovered_within_the_stale_and_sweep_bound_exactly_once(
    client, owner_sessionmaker, test_settings, county, queue_pool
):
    """A worker dies holding a run; a live worker re-delivers it within job_stale_seconds +
    sweeper_interval_seconds of the kill, never earlier than job_stale_seconds after the dead run started."""
    stale, interval = 4, 2
    key = await _trigger(client, owner_sessionmaker, test_settings, county)
    settings = private_worker_settings(test_settings, county.code)
    env = {**os.environ, "FUPIN_QUEUE_NAME": settings.queue_name, "FUPIN_WORKER_AREA": county.code,
           "FUPIN_JOB_STALE_SECONDS": str(stale), "FUPIN_SWEEPER_INTERVAL_SECONDS": str(interval)}
    pool = await queue_pool(settings)
    await pool.enqueue_job("run_job", key, _job_id=f"{key}#first")
    first = _spawn_worker({**env, "FUPIN_FAULT_SLEEP_SECONDS": "600"})
    second: subprocess.Popen[bytes] | None = None
    try:
        await _wait_for(lambda: _status_is(owner_sessionmaker, key, "running"), what="the first worker to start")
        first_started = (await _run(owner_sessionmaker, key)).started_at
        # The survivor is up before the kill: its start-up sweep skips the run the first worker holds.
        second = _spawn_worker(env)
        await _wait_for(lambda: _worker_up(pool, settings), what="the second worker to start")
        await _wait_for(lambda: _effects_pending(owner_sessionmaker, key), what="the job to sit before its commit")
        _stop(first, signal.SIGKILL)
        killed_at = time.monotonic()
        assert await _verified_rows(owner_sessionmaker, key) == 0  # the killed transaction left nothing
        await _wait_for(lambda: _status_is(owner_sessionmaker, key, "done"), what="recovery of the killed run")
        recovered_in = time.monotonic() - killed_at
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second, signal.SIGINT)
        await pool.delete(f"arq:result:{key}#first", f"arq:in-progress:{key}#first", f"arq:job:{key}#first")
    run = await _run(owner_sessionmaker, key)
    assert await _verified_rows(owner_sessionmaker, key) == 1  # the effect happened exactly once
    assert run.attempts == 2  # the killed attempt and the one that finished
    assert run.started_at is not None
    assert first_started is not None
    # Never re-delivered while it could still be alive; re-delivered by the first sweep after that.
    assert (run.started_at - first_started).total_seconds() >= stale
    print(f"recovered {recovered_in:.1f} s after SIGKILL (bound {stale} + {interval} s + pickup)")
    assert recovered_in < stale + interval + 60  # generous: a loaded CI machine delays process start-up


async def _status_is(sm, key: str, status: str) -> bool:
    return (await _run(sm, key)).status == status


async def _worker_up(pool: ArqRedis, settings: Settings) -> bool:
    return bool(await pool.exists(f"{settings.queue_name}:health"))


async def _effects_pending(sm, key: str) -> bool:
    """The run is inside its job transaction, not committed: its worker holds the row lock."""
    async with sm() as s, s.begin():
        free = await s.scalar(select(jobs.JobRun.id).where(jobs.JobRun.key == key).with_for_update(skip_locked=True))
    return free is None and (await _run(sm, key)).status == "running"
