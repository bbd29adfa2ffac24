from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from sqlalchemy import func, select

import fupin_worker.jobs.assessment as schedule_module
from fupin import jobs
from fupin.assessment.jobs import SCHEDULE, annual_key, monthly_key
from fupin.assessment.models import QuotaProposal, RepaymentCheck
from fupin_worker import kinds, runner
from fupin_worker.schedule import ensure_due_runs
from tests.assessment.factories import make_loan
from tests.factories import new_county

Y = 2025


async def _count(sm, model, *where) -> int:
    async with sm() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class TestAnnualRunsOnce:
    async def test_two_concurrent_requests_of_the_annual_key_create_one_run(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1)
        key = annual_key(county.code, Y)

        async def request() -> bool:
            async with owner_sessionmaker() as session, session.begin():
                _, created = await jobs.request_job(session, kind="assessment.annual", key=key, area_code=county.code)
                await asyncio.sleep(0)  # hold the transaction open while the other one inserts
                return created

        assert sorted(await asyncio.gather(request(), request())) == [False, True]
        assert await _count(owner_sessionmaker, jobs.JobRun, jobs.JobRun.key == key) == 1

    async def test_two_workers_executing_the_annual_key_write_checks_and_proposals_once(
        self, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await new_county(owner_sessionmaker, townships=2, villages=1)
        v = county.villages[county.townships[0]][0]
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 5, 1),
                        repayments=[("9000.00", date(Y, 5, 1))])
        key = annual_key(county.code, Y)
        async with owner_sessionmaker() as session, session.begin():
            await jobs.request_job(session, kind="assessment.annual", key=key, area_code=county.code)
        outcomes = await asyncio.gather(
            runner.execute(app_sessionmaker, test_settings, key), runner.execute(app_sessionmaker, test_settings, key)
        )
        assert "done" in outcomes
        assert outcomes.count("done") == 1
        assert await _count(owner_sessionmaker, RepaymentCheck, RepaymentCheck.job_key == key) == 2
        assert await _count(owner_sessionmaker, QuotaProposal, QuotaProposal.county_code == county.code) == 2
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"


class TestMonthly:
    async def test_monthly_run_checks_year_to_date_through_the_month_end(
        self, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        t = county.townships[0]
        v = county.villages[t][0]
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 2, 28),
                        repayments=[("10000.00", date(Y, 3, 1))])  # late: after the February month end
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 3, 15))
        key = monthly_key(county.code, Y, 2)
        async with owner_sessionmaker() as session, session.begin():
            await jobs.request_job(session, kind="assessment.monthly", key=key, area_code=county.code)
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
        async with owner_sessionmaker() as session:
            check = (await session.scalars(select(RepaymentCheck).where(RepaymentCheck.job_key == key))).one()
        assert (check.period_start, check.period_end, check.as_of) == (date(Y, 1, 1), date(Y, 2, 28), date(Y, 2, 28))
        assert (check.principal_due, check.principal_recovered, check.band) == (10000, 0, "penalty")


class TestSchedule:
    def test_due_keys_follow_the_calendar(self):
        assert [d.key for d in schedule_module.monthly_due(datetime(2026, 1, 10))] == [f"{SCHEDULE}:monthly:2025-12"]
        assert [d.key for d in schedule_module.monthly_due(datetime(2026, 7, 1))] == [f"{SCHEDULE}:monthly:2026-06"]
        assert schedule_module.annual_due(datetime(2026, 1, 4, 23, 59)) == []
        assert [d.key for d in schedule_module.annual_due(datetime(2026, 1, 5))] == [f"{SCHEDULE}:annual:2025"]

    async def test_ticks_create_the_fan_out_once_and_it_creates_one_run_per_county(
        self, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await new_county(owner_sessionmaker, townships=1)
        now = datetime(2031, 1, 5, 1, 0, tzinfo=UTC)  # a year no other test uses

        async def tick() -> list[str]:
            async with owner_sessionmaker() as session, session.begin():
                return await ensure_due_runs(session, kinds.SCHEDULE, now=now, tz="Asia/Shanghai")

        created = await asyncio.gather(tick(), tick())
        fan_key = f"{SCHEDULE}:annual:2030"
        assert sum(k == fan_key for keys in created for k in keys) == 1
        assert await runner.execute(app_sessionmaker, test_settings, fan_key) == "done"
        assert await _count(owner_sessionmaker, jobs.JobRun, jobs.JobRun.key == annual_key(county.code, 2030)) == 1
        assert await runner.execute(app_sessionmaker, test_settings, fan_key) == "already_done"
