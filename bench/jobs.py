"""Job benchmarks: a list other domains extend. Each entry gets the seeded database and returns a result line.

    from bench.jobs import JobBench, register

    async def settle(ctx: BenchContext) -> str:
        ...  # call the domain's service in ctx.owner_session() and return what was done
        return f"{n:,} payouts"

    register(JobBench("subsidies: quarterly settlement", settle))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from bench import monitoring
from bench.assessment import repayment_checks

if TYPE_CHECKING:
    from bench.run import BenchContext


@dataclass(frozen=True)
class JobBench:
    name: str
    run: Callable[[BenchContext], Awaitable[str]]


async def repayment_rate_query(ctx: BenchContext) -> str:
    """Floor for the repayment-rate check: the check's own aggregate (loans due in 2025 and what was repaid
    on them) as a bare SELECT, no writes, no policy lookup."""
    from fupin.assessment.service import AGGREGATE_SQL, aggregate_params

    async with ctx.owner_session() as session:
        await session.execute(text("SELECT set_config('work_mem', '256MB', true)"))
        rows = (await session.execute(AGGREGATE_SQL, aggregate_params(
            area_code=ctx.townships[0][:2] + "0" * 10, start=date(2025, 1, 1), due_until=date(2025, 12, 31),
            as_of=date(2025, 12, 31)))).all()
    return f"{len(rows):,} townships"


async def audit_verify(ctx: BenchContext) -> str:
    from fupin.audit import sealer
    from fupin.settings import get_settings

    async with ctx.owner_session() as session:
        report = await sealer.verify(session, key=get_settings().audit_checkpoint_key)
    return f"{report.rows:,} audit rows, ok={report.ok}"


SETTLEMENT_QUARTER = "2026Q3"


async def subsidy_settlement(ctx: BenchContext) -> str:
    """Quarterly settlement of every township as the plan asks for it: one `subsidy.settlement` job per county
    (its townships' runs requested first, untimed by the worker), each through the real handler in its own
    transaction, as the worker runs it."""
    from fupin import jobs
    from fupin.calendar import Quarter
    from fupin.ledger import service as ledger
    from fupin.subsidies import jobs as subsidy_jobs
    from fupin.subsidies import service as subsidies
    from fupin.subsidies.models import SubsidyPayout

    quarter = Quarter.parse(SETTLEMENT_QUARTER)
    async with ctx.owner_session() as session:
        townships = list(await session.scalars(text("SELECT DISTINCT township_code FROM loan ORDER BY 1")))
        counties: dict[str, list[str]] = {}
        for t in townships:
            counties.setdefault(t[:6] + "000000", []).append(t)
        for county, towns in counties.items():
            await subsidies.ensure_county_settlement(session, county=county, townships=towns, quarter=quarter,
                                                     triggered_by="bench")
    handler = subsidy_jobs.settle
    for county in counties:
        async with ctx.owner_session() as session:
            job = await session.scalar(select(jobs.JobRun).where(
                jobs.JobRun.key == subsidies.job_key("settlement", county, SETTLEMENT_QUARTER)))
            assert job is not None
            await handler(session, job)
    async with ctx.owner_session() as session:
        payouts = await session.scalar(select(text("count(*)")).select_from(SubsidyPayout))
        total = await session.scalar(select(text("coalesce(sum(amount), 0)")).select_from(SubsidyPayout))
        check = await ledger.check(session)
    return (f"{len(townships):,} townships in {len(counties):,} counties {SETTLEMENT_QUARTER}, one job per county, "
            f"{payouts:,} payouts, ¥{Decimal(total):,.2f}, ledger ok={check.ok}")


async def dividend_run(ctx: BenchContext) -> str:
    """One pooled-loan (rate model) pool over every registered household of the first county, one holding
    each; then the year's run through the real `dividend.pay` handler's body (payouts, accounts, one entry)."""
    from fupin.auth.principal import SYSTEM
    from fupin.dividends import jobs as dividend_jobs
    from fupin.dividends import service as dividends

    county = ctx.townships[0][:6] + "000000"
    async with ctx.owner_session() as session:
        pool = await dividends.create_pool(
            session, principal=SYSTEM, name="基准分红", operator_name="基准公司", operator_kind="company",
            model="rate", rate=Decimal("0.080000"), fixed_amount=None, term_years=3, start_on=date(2025, 1, 1),
            area_code=county, insurance_premium=None, insurance_cover=None,
        )
        await session.execute(text(
            """INSERT INTO dividend_holding (id, pool_id, household_id, area_code, county, amount, start_on, end_on, status)
               SELECT gen_random_uuid(), :pool, id, area_code, left(area_code, 6), CAST(5000 AS NUMERIC(14, 2)), DATE '2025-01-01',
                      DATE '2027-12-31', 'active'
               FROM household WHERE status = 'registered' AND area_code LIKE :county"""
        ), {"pool": pool.id, "county": county[:6] + "%"})
        run = await dividends.request_run(session, principal=SYSTEM, pool_id=pool.id, period="2025")
    async with ctx.owner_session() as session:
        result = await dividend_jobs.pay_run(session, run_id=run.id, run_on=date(2026, 1, 5))
    return f"county {county}: {result['households']:,} households, {result['persons']:,} persons, ¥{Decimal(result['total']):,.2f}"


async def household_import(ctx: BenchContext) -> str:
    """The .xlsx roster import (all or nothing) of `ctx.import_households` households, 3 members each,
    spread over the seeded villages; the workbook is built before the clock starts."""
    import time

    from bench.households_import import roster
    from fupin.auth.principal import SYSTEM
    from fupin.households.importer import import_roster

    content = roster(ctx.villages, ctx.import_households)
    t0 = time.perf_counter()
    async with ctx.owner_session() as session:
        result = await import_roster(session, principal=SYSTEM, content=content)
    build = time.perf_counter() - t0
    return f"{result.households:,} households, {result.members:,} members ({len(content) // 1024:,} KiB; import {build:.1f} s)"


async def household_export(ctx: BenchContext) -> str:
    """`GET /households/export?format=csv` of the whole province, as the route streams it (the same cursor
    batches and CSV writer), the bytes counted and dropped; the process's RSS sampled while it runs."""
    import psutil

    from bench.run import PeakRss
    from fupin.auth.principal import SYSTEM
    from fupin.db import make_sessionmaker
    from fupin.households import importer, queries

    before = psutil.Process().memory_info().rss
    size = lines = 0
    with PeakRss(psutil.Process()) as peak:
        batches = queries.export_batches(make_sessionmaker(ctx.engine), principal=SYSTEM, filters=queries.Filters())
        async for chunk in importer.roster_csv(batches, SYSTEM.role):
            size += len(chunk)
            lines += chunk.count(b"\n")
    async with ctx.owner_session() as session:
        households = await session.scalar(text("SELECT count(*) FROM household"))
    return (f"{households:,} households, {lines - 1:,} member rows, {size / 2**20:,.1f} MiB CSV; "
            f"RSS {before / 2**20:,.0f} → peak {peak.peak / 2**20:,.0f} MiB")


async def household_export_floor(ctx: BenchContext) -> str:
    """Floor of the export: PostgreSQL writes the same join as CSV itself (COPY … TO STDOUT), the bytes
    counted and dropped — no masking, no labels, no Python per row."""
    import asyncpg
    from sqlalchemy.util import greenlet_spawn

    size = 0

    async def sink(data: bytes) -> None:
        nonlocal size
        size += len(data)

    fairy = await ctx.engine.raw_connection()
    conn: asyncpg.Connection = fairy.driver_connection
    try:
        await conn.copy_from_query(
            """SELECT h.household_no, h.area_code, h.address, h.category, h.main_cause, h.secondary_causes,
                      h.income_per_capita, h.family_planning, h.veteran, h.year_identified, m.name, m.id_number,
                      m.relation, m.labour, m.full_civil_capacity, m.in_school, m.health, m.disability, h.status
               FROM household h JOIN household_member m ON m.household_id = h.id AND m.active
               ORDER BY h.area_code, h.household_no, m.relation <> '户主', m.birth_date, m.id""",
            output=sink, format="csv")
    finally:
        await greenlet_spawn(fairy.close)
    return f"{size / 2**20:,.1f} MiB CSV"


JOBS: list[JobBench] = [
    JobBench("repayment rate per township (aggregate SELECT floor)", repayment_rate_query),
    JobBench("assessment: repayment-rate check, every township (run_checks)", repayment_checks),
    JobBench(f"subsidies: quarterly settlement {SETTLEMENT_QUARTER}, every township", subsidy_settlement),
    JobBench("dividends: a year's run of one county pool", dividend_run),
    JobBench("households: .xlsx roster import", household_import),
    JobBench("households: roster export floor (COPY of the same join to CSV)", household_export_floor),
    JobBench("households: CSV roster export of the province, streamed (GET /households/export)", household_export),
    JobBench("monitoring: build a medical screening file (preparation, not a measurement)", monitoring.build_file),
    JobBench("monitoring: screening floor, COPY + one INSERT … SELECT of the same rows", monitoring.floor),
    JobBench("monitoring: screening file upload, all or nothing (screening.upload)", monitoring.upload),
    JobBench("audit.verify (hash chain)", audit_verify),
]


def register(job: JobBench) -> None:
    if all(j.name != job.name for j in JOBS):
        JOBS.append(job)
