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
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from bench.run import BenchContext


@dataclass(frozen=True)
class JobBench:
    name: str
    run: Callable[[BenchContext], Awaitable[str]]


async def repayment_rate_query(ctx: BenchContext) -> str:
    """Floor for the repayment-rate check: one aggregate over every loan, grouped by township."""
    async with ctx.owner_session() as session:
        rows = (await session.execute(text(
            """SELECT township_code,
                      sum(principal) FILTER (WHERE status IN ('repaid_on_time')) AS on_time,
                      sum(principal) FILTER (WHERE status IN ('repaid_on_time', 'repaid_late', 'overdue')) AS due
               FROM loan GROUP BY township_code"""
        ))).all()
    return f"{len(rows):,} townships"


async def audit_verify(ctx: BenchContext) -> str:
    from fupin.audit import service as audit

    async with ctx.owner_session() as session:
        report = await audit.verify_chain(session)
    return f"{report.rows:,} audit rows, ok={report.ok}"


JOBS: list[JobBench] = [
    JobBench("repayment rate per township (aggregate SELECT floor)", repayment_rate_query),
    JobBench("audit.verify (hash chain)", audit_verify),
]


def register(job: JobBench) -> None:
    if all(j.name != job.name for j in JOBS):
        JOBS.append(job)
