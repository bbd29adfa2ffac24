"""Hot reads of loans (`fupin.fastread`): one statement for a loan and its repayments, rows shaped like
`LoanDetail` — the same fields, order, displayed status and repayment order as `queries.get_loan`, which
stays the ORM path; a page of loans through the ORM path's own statement (`queries.loans_statement`); one
application shaped like the route's `ApplicationRead` with its `allowed_actions`."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from fupin.areas.scope import visible
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import not_found
from fupin.fastread import Prepared, fetch_statement, record
from fupin.loans import queries
from fupin.loans.approval import allowed_actions
from fupin.loans.models import Loan, LoanApplication, LoanRepayment
from fupin.loans.queries import shown_status
from fupin.loans.schemas import ApplicationRead, LoanRead, RepaymentRead
from fupin.paging import page as page_of

LOAN = tuple(LoanRead.model_fields)
REPAYMENT = tuple(RepaymentRead.model_fields)
_L = Loan.__table__
_R = LoanRepayment.__table__

# The loan's columns repeat on each of its repayments (a loan has a handful): one round trip, not two.
_BY_ID = Prepared(
    select(*(_L.c[f] for f in LOAN), *(_R.c[f].label(f"r_{f}") for f in REPAYMENT), _R.c.area_code.label("r_area"))
    .select_from(_L.outerjoin(_R, _R.c.loan_id == _L.c.id))
    .where(_L.c.id == bindparam("id", type_=PgUUID(as_uuid=True)))
    .order_by(_R.c.paid_on, _R.c.recorded_at)
)


async def loan(conn: asyncpg.Connection, *, principal: Principal, loan_id: uuid.UUID) -> dict[str, Any]:
    rows = await _BY_ID.fetch(conn, id=loan_id)
    if not rows or not visible(principal, rows[0]["area_code"]):
        raise not_found("loan")
    out = record(rows[0], LOAN)
    out["status"] = shown_status(out["status"], out["due_on"], out["outstanding"], business_date())
    out["repayments"] = [{f: r[f"r_{f}"] for f in REPAYMENT} for r in rows
                         if r["r_id"] is not None and visible(principal, r["r_area"])]
    return out


async def loan_page(
    conn: asyncpg.Connection, *, principal: Principal, status: str | None, township_code: str | None, limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    today = business_date()
    rows = await fetch_statement(conn, queries.loans_statement(
        principal, status=status, township_code=township_code, limit=limit, cursor=cursor, today=today))
    items, next_cursor = page_of(rows, limit, lambda r: (r["disbursed_on"], r["id"]))
    out = []
    for row in items:
        item = record(row, LOAN)
        item["status"] = shown_status(item["status"], item["due_on"], item["outstanding"], today)
        out.append(item)
    return {"items": out, "next_cursor": next_cursor}


APPLICATION = tuple(f for f in ApplicationRead.model_fields if f != "allowed_actions")
_A = LoanApplication.__table__
_APPLICATION_BY_ID = Prepared(select(*(_A.c[f] for f in APPLICATION))
                              .where(_A.c.id == bindparam("id", type_=PgUUID(as_uuid=True))))


async def application(conn: asyncpg.Connection, *, principal: Principal, application_id: uuid.UUID) -> dict[str, Any]:
    row = await _APPLICATION_BY_ID.fetchrow(conn, id=application_id)
    if row is None or not visible(principal, row["area_code"]):
        raise not_found("loan_application")
    out = record(row, APPLICATION)
    # the same rule as the ORM route's, read from the row's fields instead of an ORM object
    out["allowed_actions"] = allowed_actions(cast(LoanApplication, SimpleNamespace(**out)), principal.role)
    return out
