from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from fupin.schema import FupinSchema, NoFloat

RateIn = Annotated[Decimal, NoFloat, Field(max_digits=9, decimal_places=6, gt=0, le=1)]
Phase = Literal["allocation", "preallocation", "settlement"]


class PolicyCreate(FupinSchema):
    effective_from: date
    rate: RateIn = Field(description="annual rate as a decimal string, e.g. \"0.0258\" for 2.58%")
    productive_only: bool = True
    note: str = Field(default="", max_length=300)


class PolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: date
    rate: Decimal
    day_count: str
    productive_only: bool
    rounding: str
    note: str
    created_by: str
    created_at: datetime


class RunCreate(FupinSchema):
    township_code: str = Field(pattern=r"^\d{9}000$")
    quarter: str = Field(pattern=r"^\d{4}Q[1-4]$")
    phase: Phase


class RunRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    quarter: str
    phase: str
    job_key: str
    status: str
    job_status: str | None = None  # the worker's view: pending, running, waiting, done, failed, dead
    waiting_for: str | None = Field(None, description="While waiting: the key of the run whose completion starts it")
    waiting_reason: str | None = None
    attempts: int = 0
    last_error: str | None = None
    triggered_by: str
    total_expected: Decimal
    total_paid: Decimal
    total_returned: Decimal
    total_topped_up: Decimal
    loans_paid: int
    loans_late: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RosterRow(FupinSchema):
    loan_id: uuid.UUID
    household_id: uuid.UUID | None
    head_name: str | None
    id_number_masked: str | None
    enterprise_name: str | None
    area_code: str
    coop_code: str
    principal: Decimal
    days: int
    rate: Decimal
    amount: Decimal
    paid_on: date


class Roster(FupinSchema):
    run_id: uuid.UUID
    township_code: str
    quarter: str
    total: Decimal
    rows: list[RosterRow]


class LoanSubsidy(FupinSchema):
    loan_id: uuid.UUID
    eligible: bool
    reason: str
    rate: Decimal
    days: int
    amount: Decimal
    paid: bool
    paid_amount: Decimal | None = None
    paid_on: date | None = None
    run_id: uuid.UUID | None = None
