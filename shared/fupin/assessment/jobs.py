"""Keyed assessment runs. A scheduled run's period and as-of date follow from its key alone, so a
run caught up late by the sweeper computes exactly what it would have computed on time:

- `assessment.monthly:{county}:{yyyy-mm}` — year to date through the month, as of its last day
  (run from the 1st of the next month);
- `assessment.annual:{county}:{yyyy}` — the year, as of January 4 of the next year (run on
  January 5: every repayment made before the check day counts), then next year's quota proposals;
- `assessment.schedule:{monthly|annual}:{period}` — fans out one run per county;
- `assessment.check:{area}:{start}:{end}:{as_of}` — a check asked for by the poverty office.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.areas.models import Area
from fupin.assessment import service

MONTHLY = "assessment.monthly"
ANNUAL = "assessment.annual"
SCHEDULE = "assessment.schedule"
MANUAL = service.MANUAL


def monthly_key(county: str, year: int, month: int) -> str:
    return f"{MONTHLY}:{county}:{year:04d}-{month:02d}"


def annual_key(county: str, year: int) -> str:
    return f"{ANNUAL}:{county}:{year:04d}"


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


async def monthly(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    _, county, period = run.key.split(":")
    year, month = (int(x) for x in period.split("-"))
    end = month_end(year, month)
    return await service.run_checks(
        session, area_code=county, kind="monthly", period_start=date(year, 1, 1), period_end=end, as_of=end,
        job_key=run.key,
    )


async def annual(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    _, county, period = run.key.split(":")
    year = int(period)
    result = await service.run_checks(
        session, area_code=county, kind="annual", period_start=date(year, 1, 1), period_end=date(year, 12, 31),
        as_of=date(year + 1, 1, 4), job_key=run.key,
    )
    result["proposals"] = await service.propose_quotas(session, job_key=run.key, assessed_year=year)
    return result


async def manual(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    a = run.args
    return await service.run_checks(
        session, area_code=a["area_code"], kind="manual", period_start=date.fromisoformat(a["period_start"]),
        period_end=date.fromisoformat(a["period_end"]), as_of=date.fromisoformat(a["as_of"]), job_key=run.key,
    )


async def fan_out(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    """One keyed run per county; the sweeper delivers them (keys are unique, so reruns add nothing)."""
    _, which, period = run.key.split(":")
    counties = (await session.scalars(select(Area.code).where(Area.level == "county").order_by(Area.code))).all()
    created = 0
    for county in counties:
        if which == "monthly":
            y, m = (int(x) for x in period.split("-"))
            kind, key = MONTHLY, monthly_key(county, y, m)
        else:
            kind, key = ANNUAL, annual_key(county, int(period))
        _, new = await jobs.request_job(session, kind=kind, key=key, area_code=county, args={"county": county},
                                    requested_by="cron")
        created += int(new)
    return {"counties": len(counties), "created": created}
