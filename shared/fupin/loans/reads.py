"""Hot reads of loans (`fupin.fastread`): one statement for a loan and its repayments, rows shaped like
`LoanDetail` — the same fields, order, displayed status and repayment order as `queries.get_loan`, which
stays the ORM path."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from fupin.areas.scope import visible
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import not_found
from fupin.fastread import Prepared, record
from fupin.loans.models import Loan, LoanRepayment
from fupin.loans.queries import shown_status
from fupin.loans.schemas import LoanRead, RepaymentRead

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
