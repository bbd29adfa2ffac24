"""Loan jobs: the daily overdue sweep, one set-based UPDATE per table."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.loans.models import Loan, LoanApplication
from fupin.loans.statuses import ApplicationStatus, LoanStatus

MARK_OVERDUE = "loan.mark_overdue"  # was "loans.mark_overdue" (renamed by migration tidy0100)


async def mark_overdue(session: AsyncSession, *, as_of: date) -> int:
    """Loans past their due date with principal outstanding become `overdue` (and their applications)."""
    ids = (await session.scalars(
        update(Loan).where(Loan.status == LoanStatus.current, Loan.outstanding > 0, Loan.due_on < as_of)
        .values(status=LoanStatus.overdue).returning(Loan.application_id)
    )).all()
    app_ids = [i for i in ids if i is not None]
    if app_ids:
        await session.execute(update(LoanApplication).where(LoanApplication.id.in_(app_ids),
                                                            LoanApplication.status == ApplicationStatus.disbursed)
                              .values(status=ApplicationStatus.overdue))
    return len(ids)


async def mark_overdue_job(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    as_of = date.fromisoformat(str(run.args["as_of"]))
    return {"marked": await mark_overdue(session, as_of=as_of)}

