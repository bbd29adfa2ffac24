"""Cron: which fan-out runs exist by when, and the fan-out creating one run per township once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from fupin import jobs
from fupin.calendar import SHANGHAI
from fupin.subsidies.models import SubsidyRun
from fupin_worker import runner
from fupin_worker.jobs.subsidies import quarter_start_due, settlement_due
from fupin_worker.kinds import SCHEDULE
from tests.factories import new_county


def test_schedule_is_registered_and_keys_follow_the_quarter():
    names = {e.name for e in SCHEDULE}
    assert any("settlement" in n for n in names)
    assert any("pre-allocation" in n for n in names)
    start = datetime(2026, 10, 1, 0, 5, tzinfo=SHANGHAI)
    assert [d.key for d in quarter_start_due(start)] == [
        "subsidy.plan.allocation:2026Q4", "subsidy.plan.preallocation:2026Q4"]
    assert [d.key for d in settlement_due(start)] == ["subsidy.plan.settlement:2026Q3"]
    # 2027-01-03 still settles 2026Q4; the key is the same on every tick, so it is created once
    assert [d.args for d in settlement_due(datetime(2027, 1, 3, tzinfo=SHANGHAI))] == [
        {"phase": "settlement", "quarter": "2026Q4"}]


async def test_fan_out_creates_one_run_per_township_once(owner_sessionmaker, app_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=3)
    due = quarter_start_due(datetime(2031, 4, 1, tzinfo=SHANGHAI))[0]
    async with owner_sessionmaker() as s, s.begin():
        await jobs.request_job(s, kind=due.kind, key=due.key, area_code="", args=due.args, requested_by="cron")
    assert await runner.execute(app_sessionmaker, test_settings, due.key) == "done"
    assert await runner.execute(app_sessionmaker, test_settings, due.key) == "already_done"
    async with owner_sessionmaker() as s:
        runs = (await s.scalars(select(SubsidyRun).where(
            SubsidyRun.quarter == "2031Q2", SubsidyRun.area_code.in_(county.townships)))).all()
        assert sorted(r.area_code for r in runs) == county.townships
        assert {r.triggered_by for r in runs} == {"cron"}
        job_keys = set((await s.scalars(select(jobs.JobRun.key).where(
            jobs.JobRun.key.in_([r.job_key for r in runs])))).all())
    assert job_keys == {f"subsidy.allocation:{t}:2031Q2" for t in county.townships}
    # a township's allocation with no loans due runs and moves nothing
    assert await runner.execute(app_sessionmaker, test_settings, f"subsidy.allocation:{county.townships[0]}:2031Q2") == "done"
