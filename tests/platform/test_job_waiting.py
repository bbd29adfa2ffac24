"""A run whose input is not ready waits: not failed, no attempt spent, and delivered again when the run it
waits for is done — by the finishing run itself, or by the sweeper when that release was missed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from fupin import jobs
from fupin.db import ALL_AREAS, set_area_scope
from fupin_worker import kinds
from fupin_worker import main as worker_main
from fupin_worker.runner import execute
from tests.factories import new_county

NEEDS, INPUT = "test.waiting.needs_input", "test.waiting.input"


async def _input(session: Any, run: jobs.JobRun) -> dict[str, Any]:
    return {"made": True}


async def _needs_input(session: Any, run: jobs.JobRun) -> dict[str, Any]:
    awaited = run.args["input"]
    if await session.scalar(select(jobs.JobRun.status).where(jobs.JobRun.key == awaited)) != jobs.JobStatus.done.value:
        raise jobs.NotReady(f"{awaited} is not done yet", waiting_for=awaited)
    return {"used": awaited}


@pytest.fixture(autouse=True)
def _test_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two kinds of this module's own, added to the worker's table while its tests run."""
    monkeypatch.setitem(kinds.HANDLERS, INPUT, _input)
    monkeypatch.setitem(kinds.HANDLERS, NEEDS, _needs_input)


async def _pair(sm: Any, county: str) -> tuple[str, str]:
    needs, made = f"{NEEDS}:{county}:x", f"{INPUT}:{county}:x"
    async with sm() as s, s.begin():
        await jobs.request_job(s, kind=NEEDS, key=needs, area_code=county, args={"input": made})
        await jobs.request_job(s, kind=INPUT, key=made, area_code=county)
    return needs, made


async def _run(sm: Any, key: str) -> jobs.JobRun:
    async with sm() as s:
        run = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key))
        assert run is not None
        return run


class Deliveries:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, keys: list[str]) -> None:
        self.keys += keys


class TestWaiting:
    async def test_a_run_waits_without_spending_an_attempt_and_is_released_by_its_input(
        self, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = (await new_county(owner_sessionmaker)).code
        needs, made = await _pair(owner_sessionmaker, county)
        deliver = Deliveries()
        assert await execute(app_sessionmaker, test_settings, needs, deliver=deliver) == "waiting"
        run = await _run(owner_sessionmaker, needs)
        assert (run.status, run.attempts, run.waiting_for, run.last_error) == ("waiting", 0, made, None)
        assert run.waiting_reason == f"{made} is not done yet"
        assert deliver.keys == []
        # a stray delivery while waiting finds it still not ready, and still spends nothing
        assert await execute(app_sessionmaker, test_settings, needs, deliver=deliver) == "waiting"
        assert (await _run(owner_sessionmaker, needs)).attempts == 0

        assert await execute(app_sessionmaker, test_settings, made, deliver=deliver) == "done"
        assert deliver.keys == [needs]
        run = await _run(owner_sessionmaker, needs)
        assert (run.status, run.waiting_for, run.waiting_reason, run.enqueued_at) == ("pending", None, None, None)
        assert await execute(app_sessionmaker, test_settings, needs, deliver=deliver) == "done"
        run = await _run(owner_sessionmaker, needs)
        assert (run.status, run.attempts, run.result) == ("done", 1, {"used": made})

    async def test_the_sweeper_leaves_waiting_runs_alone_until_their_input_is_done(
        self, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = (await new_county(owner_sessionmaker)).code
        needs, made = await _pair(owner_sessionmaker, county)
        assert await execute(app_sessionmaker, test_settings, needs) == "waiting"

        async def swept() -> set[str]:
            async with app_sessionmaker() as s, s.begin():
                await set_area_scope(s, ALL_AREAS)
                runs = await jobs.runs_to_sweep(s, stale_after=timedelta(0), worker_area=county)
                return {r.key for r in runs}

        assert needs not in await swept()
        # The input completes but its release is lost (it raced the wait): the sweeper delivers the run.
        async with owner_sessionmaker() as s, s.begin():
            await s.execute(update(jobs.JobRun).where(jobs.JobRun.key == made).values(status="done"))
        assert needs in await swept()
        assert await execute(app_sessionmaker, test_settings, needs) == "done"

    async def test_an_input_done_while_the_run_looked_sends_it_straight_back(
        self, owner_sessionmaker, app_sessionmaker, test_settings, monkeypatch
    ):
        county = (await new_county(owner_sessionmaker)).code
        needs, made = await _pair(owner_sessionmaker, county)

        async def racing(session: Any, run: jobs.JobRun) -> dict[str, Any]:
            # saw the input not done; it commits before this run records that it waits
            async with owner_sessionmaker() as other, other.begin():
                await other.execute(update(jobs.JobRun).where(jobs.JobRun.key == made).values(status="done"))
            raise jobs.NotReady("input not done", waiting_for=made)

        monkeypatch.setitem(kinds.HANDLERS, NEEDS, racing)
        deliver = Deliveries()
        assert await execute(app_sessionmaker, test_settings, needs, deliver=deliver) == "waiting"
        run = await _run(owner_sessionmaker, needs)
        assert (run.status, run.waiting_for, run.attempts) == ("pending", None, 0)
        assert deliver.keys == [needs]

    async def test_the_worker_logs_and_counts_the_wait(self, owner_sessionmaker, app_sessionmaker, test_settings):
        from fupin_worker import metrics

        county = (await new_county(owner_sessionmaker)).code
        needs, _ = await _pair(owner_sessionmaker, county)
        before = metrics.REGISTRY.get_sample_value("fupin_job_executions_total", {"kind": NEEDS, "outcome": "waiting"}) or 0
        ctx = {"sessionmaker": app_sessionmaker, "settings": test_settings}
        assert await worker_main.run_job(ctx, needs) == "waiting"
        after = metrics.REGISTRY.get_sample_value("fupin_job_executions_total", {"kind": NEEDS, "outcome": "waiting"})
        assert after == before + 1
        assert metrics.REGISTRY.get_sample_value("fupin_job_failures_total", {"kind": NEEDS, "outcome": "failed"}) is None
