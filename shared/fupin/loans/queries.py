"""Reads: loans with repayments, the monthly public notice (公示) and the quarterly reports, built twice
(the station's from the workflow, the coop's from the bank postings) and reconciled loan by loan."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of
from fupin.areas.scope import in_scope, scoped, visible
from fupin.auth.principal import Principal
from fupin.calendar import Quarter, business_date
from fupin.errors import RuleViolation, not_found
from fupin.households.models import Household
from fupin.loans.models import Loan, LoanApplication, LoanApplicationStep, LoanRepayment
from fupin.loans.statuses import LoanStatus
from fupin.money import ZERO
from fupin.paging import after, page

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def display_status(loan: Loan, today: date) -> LoanStatus:
    return shown_status(loan.status, loan.due_on, loan.outstanding, today)


def shown_status(status: str, due_on: date, outstanding: Decimal, today: date) -> LoanStatus:
    """A current loan past its due date with money still owed shows as overdue before the nightly job marks it.
    Returned as the enum: response models updated with it skip validation and must not hold a bare string."""
    if status == LoanStatus.current and due_on < today and outstanding > 0:
        return LoanStatus.overdue
    return LoanStatus(status)


async def list_loans(session: AsyncSession, *, principal: Principal, status: str | None, township_code: str | None,
                     limit: int, cursor: str | None) -> tuple[list[Loan], str | None]:
    stmt = loans_statement(principal, status=status, township_code=township_code, limit=limit, cursor=cursor,
                           today=business_date())
    return page((await session.scalars(stmt)).all(), limit, lambda loan: (loan.disbursed_on, loan.id))


def loans_statement(principal: Principal, *, status: str | None, township_code: str | None, limit: int,
                    cursor: str | None, today: date) -> Select[Loan]:
    """A page of `GET /loans` (one row more than `limit`), for the ORM path and the hot read alike."""
    stmt = scoped(select(Loan), principal, Loan.area_code)
    if status == "overdue":
        stmt = stmt.where(Loan.outstanding > 0, Loan.due_on < today, Loan.status.in_(("current", "overdue")))
    elif status == "current":
        stmt = stmt.where(Loan.status == "current", Loan.due_on >= today)
    elif status:
        stmt = stmt.where(Loan.status == status)
    if township_code:
        stmt = stmt.where(Loan.township_code == township_code)
    return after(stmt, (Loan.disbursed_on, Loan.id), cursor, limit)


async def get_loan(session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID) -> tuple[Loan, list[LoanRepayment]]:
    loan = await session.scalar(scoped(select(Loan).where(Loan.id == loan_id), principal, Loan.area_code))
    if loan is None:
        raise not_found("loan")
    reps = (await session.scalars(scoped(select(LoanRepayment).where(LoanRepayment.loan_id == loan_id), principal,
                                         LoanRepayment.area_code).order_by(LoanRepayment.paid_on,
                                                                           LoanRepayment.recorded_at))).all()
    return loan, list(reps)


def _township(principal: Principal, code: str) -> None:
    if level_of(code) is not Level.township:
        raise RuleViolation("area.wrong_level", "township must be a township code", "须为乡镇区划代码")
    if not visible(principal, code):
        raise not_found("township")


@dataclass(frozen=True)
class NoticeRow:
    application_id: uuid.UUID
    area_code: str
    applicant: str
    amount: Decimal
    purpose: str
    on: date
    outcome: str


async def notice(session: AsyncSession, *, principal: Principal, township_code: str, month: str
                 ) -> tuple[list[NoticeRow], list[NoticeRow], list[NoticeRow]]:
    _township(principal, township_code)
    m = _MONTH.match(month)
    if not m:
        raise RuleViolation("period.invalid_month", "month must look like 2026-10", "月份格式应为 2026-10")
    start = date(int(m.group(1)), int(m.group(2)), 1)
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    name = func.coalesce(Household.head_name, LoanApplication.enterprise_name)
    base = (select(LoanApplication, name).outerjoin(Household, Household.id == LoanApplication.household_id)
            .where(LoanApplication.township_code == township_code, in_scope(principal, LoanApplication.area_code)))
    recommended = (await session.execute(base.where(
        LoanApplication.station_reviewed_on >= start, LoanApplication.station_reviewed_on < end
    ).order_by(LoanApplication.station_reviewed_on, LoanApplication.id))).all()
    decided = (await session.execute(base.where(
        LoanApplication.decided_on >= start, LoanApplication.decided_on < end,
        LoanApplication.status != "submitted",
    ).order_by(LoanApplication.decided_on, LoanApplication.id))).all()
    loans = (await session.execute(
        select(Loan, func.coalesce(Household.head_name, Loan.enterprise_name))
        .outerjoin(Household, Household.id == Loan.household_id)
        .where(Loan.township_code == township_code, Loan.disbursed_on >= start, Loan.disbursed_on < end,
               in_scope(principal, Loan.area_code)).order_by(Loan.disbursed_on, Loan.id))).all()
    rec = [NoticeRow(a.id, a.area_code, n, a.amount, a.purpose, a.station_reviewed_on, "recommended")
           for a, n in recommended if a.station_reviewed_on]
    dec = [NoticeRow(a.id, a.area_code, n, a.amount, a.purpose, a.decided_on,
                     "rejected" if a.status == "rejected" else "approved") for a, n in decided if a.decided_on]
    dis = [NoticeRow(ln.application_id, ln.area_code, n, ln.principal, ln.purpose, ln.disbursed_on, "disbursed")
           for ln, n in loans if ln.application_id]
    return rec, dec, dis


@dataclass
class Line:
    application_id: uuid.UUID
    loan_id: uuid.UUID | None = None
    station_disbursed: Decimal = ZERO
    coop_disbursed: Decimal = ZERO
    station_recovered: Decimal = ZERO
    coop_recovered: Decimal = ZERO


def report_due(quarter: Quarter) -> date:
    """第十二条3/4: the quarter's report is due by the 5th of the next quarter's first month."""
    nxt = quarter.next().start
    return date(nxt.year, nxt.month, 5)


async def quarter_lines(session: AsyncSession, *, principal: Principal, township_code: str, quarter: Quarter
                        ) -> dict[uuid.UUID, Line]:
    """Per application: the station's figures and the coop's for the quarter, on the same basis (第十二条3/4):
    what was actually disbursed and every repayment received, partial ones too. The station's come from its
    own applications (the workflow's disbursement step, the loan booked for it and the repayments on it);
    the coop's from its books (loans booked in the township, repayments posted). Only real differences
    remain to reconcile, not an approved amount against a disbursed one or a full repayment against parts."""
    _township(principal, township_code)
    start, end = quarter.start, quarter.end
    lines: dict[uuid.UUID, Line] = {}
    # A disbursement step whose loan was later reversed has no loan: the station still reports the amount
    # it was told (the application's), which reconciliation shows against the coop's nothing.
    disbursed = (await session.execute(
        select(LoanApplicationStep.application_id, func.coalesce(Loan.principal, LoanApplication.amount))
        .join(LoanApplication, LoanApplication.id == LoanApplicationStep.application_id)
        .outerjoin(Loan, Loan.application_id == LoanApplicationStep.application_id)
        .where(LoanApplication.township_code == township_code, LoanApplicationStep.step == "disbursed",
               LoanApplicationStep.on_date >= start, LoanApplicationStep.on_date <= end,
               in_scope(principal, LoanApplicationStep.area_code)))).all()
    for app_id, amount in disbursed:
        lines.setdefault(app_id, Line(app_id)).station_disbursed += amount
    received = (await session.execute(
        select(LoanApplication.id, func.sum(LoanRepayment.amount))
        .join(Loan, Loan.application_id == LoanApplication.id)
        .join(LoanRepayment, LoanRepayment.loan_id == Loan.id)
        .where(LoanApplication.township_code == township_code, LoanRepayment.paid_on >= start,
               LoanRepayment.paid_on <= end, in_scope(principal, LoanApplication.area_code))
        .group_by(LoanApplication.id))).all()
    for app_id, total in received:
        lines.setdefault(app_id, Line(app_id)).station_recovered += total
    loans = (await session.execute(
        select(Loan.id, Loan.application_id, Loan.principal)
        .where(Loan.township_code == township_code, Loan.disbursed_on >= start, Loan.disbursed_on <= end,
               Loan.application_id.is_not(None), in_scope(principal, Loan.area_code)))).all()
    for loan_id, booked_app, principal_amt in loans:
        assert booked_app is not None
        line = lines.setdefault(booked_app, Line(booked_app))
        line.loan_id, line.coop_disbursed = loan_id, line.coop_disbursed + principal_amt
    reps = (await session.execute(
        select(Loan.id, Loan.application_id, func.sum(LoanRepayment.amount))
        .join(LoanRepayment, LoanRepayment.loan_id == Loan.id)
        .where(Loan.township_code == township_code, LoanRepayment.paid_on >= start, LoanRepayment.paid_on <= end,
               Loan.application_id.is_not(None), in_scope(principal, Loan.area_code))
        .group_by(Loan.id, Loan.application_id))).all()
    for loan_id, repaid_app, total in reps:
        assert repaid_app is not None
        line = lines.setdefault(repaid_app, Line(repaid_app))
        line.loan_id, line.coop_recovered = loan_id, line.coop_recovered + total
    missing = [ln.application_id for ln in lines.values() if ln.loan_id is None]
    if missing:
        for known_app, loan_id in (await session.execute(
                select(Loan.application_id, Loan.id).where(Loan.application_id.in_(missing),
                                                           in_scope(principal, Loan.area_code)))).all():
            if known_app is not None:
                lines[known_app].loan_id = loan_id
    return lines


def totals(lines: dict[uuid.UUID, Line], version: str) -> tuple[int, Decimal, Decimal]:
    if version == "station":
        dis = [ln.station_disbursed for ln in lines.values() if ln.station_disbursed]
        rec = sum((ln.station_recovered for ln in lines.values()), ZERO)
    else:
        dis = [ln.coop_disbursed for ln in lines.values() if ln.coop_disbursed]
        rec = sum((ln.coop_recovered for ln in lines.values()), ZERO)
    return len(dis), sum(dis, ZERO), rec


def differences(lines: dict[uuid.UUID, Line]) -> list[Line]:
    return sorted((ln for ln in lines.values() if ln.station_disbursed != ln.coop_disbursed
                   or ln.station_recovered != ln.coop_recovered), key=lambda ln: str(ln.application_id))
