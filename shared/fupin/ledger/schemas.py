from __future__ import annotations

import uuid
from datetime import datetime

from fupin.money import Day, Money
from fupin.schema import FupinSchema


class AccountRead(FupinSchema):
    id: uuid.UUID
    code: str
    holder_kind: str
    holder_ref: str
    purpose: str
    name: str
    area_code: str
    allow_negative: bool
    balance: Money
    created_at: datetime


class AccountLine(FupinSchema):
    entry_id: uuid.UUID
    kind: str
    reference: str
    effective_on: Day
    description: str
    debit: Money
    credit: Money
    posted_at: datetime


class AccountDetail(AccountRead):
    entries: list[AccountLine]


class LedgerCheckRead(FupinSchema):
    ok: bool
    balanced: bool
    total_debit: Money
    total_credit: Money
    unbalanced_entries: int
    accounts_mismatched: int
    negative_funds: int
