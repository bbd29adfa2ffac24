"""Repayments applied one after another on plain rows, written with one statement.

The reference path of bank posting (`postings.apply_recorded`) applies runs of repayments here: the
applications and loans are read (and locked) as plain rows, each repayment is decided in order in
memory by the rules below, and everything that changed — repayment rows, loan balances and statuses,
application statuses, 'repaid' steps and notices, the events' outcomes — is written by one statement of
data-modifying CTEs. A single repayment therefore costs one read and one write round trip, and no ORM.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UUID as SaUUID
from sqlalchemy.types import Date, Numeric, String

from fupin.areas.scope import in_scope
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.loans.models import Loan, LoanApplication


class Settleable(Protocol):
    outstanding: Decimal
    repaid_on: date | None
    status: str
    due_on: date


class HasStatus(Protocol):
    status: str


def settle_status(loan: Settleable, app: HasStatus | None, on: date) -> None:
    """A loan's status after a repayment dated `on`: repaid (on time or late) at zero, else current or
    overdue (overdue stays overdue); the application follows its loan."""
    if loan.outstanding == 0:
        loan.repaid_on = on
        loan.status = "repaid_on_time" if on <= loan.due_on else "repaid_late"
        if app is not None:
            app.status = "repaid"
    else:
        loan.repaid_on = None
        loan.status = "overdue" if loan.status == "overdue" or on > loan.due_on else "current"
        if app is not None:
            app.status = "overdue" if loan.status == "overdue" else "disbursed"


@dataclass
class AppRow:
    id: uuid.UUID
    area_code: str
    household_id: uuid.UUID | None
    status: str


@dataclass
class LoanRow:
    id: uuid.UUID
    application_id: uuid.UUID
    area_code: str
    outstanding: Decimal
    status: str
    due_on: date
    disbursed_on: date
    repaid_on: date | None


@dataclass
class Pending:
    """What a run of repayments changed, written together by `write`."""

    repayments: list[tuple[uuid.UUID, str, Decimal, date, str]] = field(default_factory=list)
    loans: dict[uuid.UUID, LoanRow] = field(default_factory=dict)
    apps: dict[uuid.UUID, AppRow] = field(default_factory=dict)
    repaid: list[tuple[AppRow, str, date]] = field(default_factory=list)  # (application, status before, on)
    events: list[tuple[uuid.UUID, str, str | None, uuid.UUID | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.repayments or self.loans or self.apps or self.repaid or self.events)

    def clear(self) -> None:
        self.repayments, self.loans, self.apps, self.repaid, self.events = [], {}, {}, [], []


async def load(
    session: AsyncSession, principal: Principal, app_ids: list[uuid.UUID], *, lock: bool
) -> tuple[dict[uuid.UUID, AppRow], dict[uuid.UUID, LoanRow]]:
    """The applications and their loans by application id, read in id order (and locked when asked)."""
    apps_stmt = (select(LoanApplication.id, LoanApplication.area_code, LoanApplication.household_id,
                        LoanApplication.status)
                 .where(LoanApplication.id.in_(app_ids), in_scope(principal, LoanApplication.area_code))
                 .order_by(LoanApplication.id))
    loans_stmt = (select(Loan.id, Loan.application_id, Loan.area_code, Loan.outstanding, Loan.status, Loan.due_on,
                         Loan.disbursed_on, Loan.repaid_on)
                  .where(Loan.application_id.in_(app_ids), in_scope(principal, Loan.area_code)).order_by(Loan.id))
    if lock:
        apps_stmt, loans_stmt = apps_stmt.with_for_update(), loans_stmt.with_for_update()
    apps = {r.id: AppRow(*r) for r in (await session.execute(apps_stmt)).all()}
    loans = {r.application_id: LoanRow(r.id, r.application_id, r.area_code, r.outstanding, r.status, r.due_on,
                                       r.disbursed_on, r.repaid_on)
             for r in (await session.execute(loans_stmt)).all() if r.application_id is not None}
    return apps, loans


_ARR = ARRAY
_WRITE = text("""
WITH rep AS (
    INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on, source_event_id, recorded_at)
    SELECT gen_random_uuid(), r.loan_id, r.area_code, left(r.area_code, 6), r.amount, r.paid_on, r.event_id, now()
    FROM unnest(:r_loan, :r_area, :r_amount, :r_on, :r_event) WITH ORDINALITY
         AS r(loan_id, area_code, amount, paid_on, event_id, n)
    ORDER BY r.n
    RETURNING 1
), ln AS (
    UPDATE loan l SET outstanding = v.outstanding, status = v.status, repaid_on = v.repaid_on, updated_at = now()
    FROM unnest(:l_id, :l_out, :l_status, :l_repaid) AS v(id, outstanding, status, repaid_on)
    WHERE l.id = v.id
    RETURNING 1
), ap AS (
    UPDATE loan_application a SET status = v.status, updated_at = now()
    FROM unnest(:a_id, :a_status) AS v(id, status)
    WHERE a.id = v.id
    RETURNING 1
), st AS (
    INSERT INTO loan_application_step (id, application_id, area_code, county, step, from_status, to_status, role, actor,
                                       on_date, opinion, recorded_at)
    SELECT gen_random_uuid(), s.app_id, s.area_code, left(s.area_code, 6), 'repaid', s.before, 'repaid', CAST(:role AS varchar),
           CAST(:actor AS varchar), s.on_date,
           '贷款已还清', now()
    FROM unnest(:s_app, :s_area, :s_before, :s_on) AS s(app_id, area_code, before, on_date)
    RETURNING 1
), nt AS (
    INSERT INTO loan_notification (id, area_code, county, household_id, application_id, message, created_at)
    SELECT gen_random_uuid(), s.area_code, left(s.area_code, 6), s.household_id, s.app_id, '贷款已还清', now()
    FROM unnest(:s_app, :s_area, :s_household) AS s(app_id, area_code, household_id)
    RETURNING 1
), ev AS (
    UPDATE bank_loan_event e SET status = v.status, code = v.code, application_id = coalesce(v.app_id, e.application_id)
    FROM unnest(:e_id, :e_status, :e_code, :e_app) AS v(id, status, code, app_id)
    WHERE e.id = v.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM rep) + (SELECT count(*) FROM ln) + (SELECT count(*) FROM ap)
       + (SELECT count(*) FROM st) + (SELECT count(*) FROM nt) + (SELECT count(*) FROM ev)
""").bindparams(
    bindparam("r_loan", type_=_ARR(SaUUID)), bindparam("r_area", type_=_ARR(String)),
    bindparam("r_amount", type_=_ARR(Numeric(14, 2))), bindparam("r_on", type_=_ARR(Date)),
    bindparam("r_event", type_=_ARR(String)),
    bindparam("l_id", type_=_ARR(SaUUID)), bindparam("l_out", type_=_ARR(Numeric(14, 2))),
    bindparam("l_status", type_=_ARR(String)), bindparam("l_repaid", type_=_ARR(Date)),
    bindparam("a_id", type_=_ARR(SaUUID)), bindparam("a_status", type_=_ARR(String)),
    bindparam("s_app", type_=_ARR(SaUUID)), bindparam("s_area", type_=_ARR(String)),
    bindparam("s_before", type_=_ARR(String)), bindparam("s_on", type_=_ARR(Date)),
    bindparam("s_household", type_=_ARR(SaUUID)),
    bindparam("e_id", type_=_ARR(SaUUID)), bindparam("e_status", type_=_ARR(String)),
    bindparam("e_code", type_=_ARR(String)), bindparam("e_app", type_=_ARR(SaUUID)),
)


async def write(session: AsyncSession, pending: Pending, *, actor: str) -> None:
    """Everything the run changed, in one statement (one round trip), then forgotten."""
    if not pending:
        return
    await session.flush()  # ORM changes made before (a disbursement) go first
    params: dict[str, Any] = {
        "r_loan": [r[0] for r in pending.repayments], "r_area": [r[1] for r in pending.repayments],
        "r_amount": [r[2] for r in pending.repayments], "r_on": [r[3] for r in pending.repayments],
        "r_event": [r[4] for r in pending.repayments],
        "l_id": [ln.id for ln in pending.loans.values()], "l_out": [ln.outstanding for ln in pending.loans.values()],
        "l_status": [ln.status for ln in pending.loans.values()],
        "l_repaid": [ln.repaid_on for ln in pending.loans.values()],
        "a_id": [a.id for a in pending.apps.values()], "a_status": [a.status for a in pending.apps.values()],
        "s_app": [s[0].id for s in pending.repaid], "s_area": [s[0].area_code for s in pending.repaid],
        "s_before": [s[1] for s in pending.repaid], "s_on": [s[2] for s in pending.repaid],
        "s_household": [s[0].household_id for s in pending.repaid],
        "e_id": [e[0] for e in pending.events], "e_status": [e[1] for e in pending.events],
        "e_code": [e[2] for e in pending.events], "e_app": [e[3] for e in pending.events],
        "role": Role.bank.value, "actor": actor,
    }
    await session.execute(_WRITE, params)
    pending.clear()
