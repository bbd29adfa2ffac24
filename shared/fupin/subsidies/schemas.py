from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from fupin.money import RATE_STRING, Day, Money, rate_schema
from fupin.schema import FupinSchema
from fupin.subsidies.rules import RunStatus

RateIn = Annotated[
    Decimal, RATE_STRING, Field(gt=0, le=1, max_digits=9, decimal_places=6), rate_schema("0.043500", "> 0, ≤ 1"),
]
Phase = Literal["allocation", "preallocation", "settlement"]


class PolicyCreate(FupinSchema):
    effective_from: Day
    rate: RateIn = Field(description="annual rate as a decimal string, e.g. \"0.0258\" for 2.58%")
    productive_only: bool = True
    note: str = Field(default="", max_length=300)


class PolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: Day
    rate: Decimal
    day_count: str
    productive_only: bool
    rounding: str
    note: str
    created_by: str
    created_at: datetime


class SubsidyRunCreate(FupinSchema):
    township_code: str = Field(pattern=r"^\d{9}000$", examples=["520123101000"])
    quarter: str = Field(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q1"])
    phase: Phase


RunCreate = SubsidyRunCreate  # the short name importers use; the OpenAPI name must be unique


class CountySubsidyRunsCreate(FupinSchema):
    county_code: str = Field(pattern=r"^\d{6}000000$", examples=["520123000000"])
    quarter: str = Field(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q1"])
    phase: Phase


class SubsidyRunRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    quarter: str
    phase: str
    job_key: str
    status: RunStatus
    job_status: str | None = None  # the worker's view: pending, running, waiting, done, failed, dead
    waiting_for: str | None = Field(None, description="While waiting: the key of the run whose completion starts it")
    waiting_reason: str | None = None
    attempts: int = 0
    last_error: str | None = None
    triggered_by: str
    total_expected: Money
    total_paid: Money
    total_returned: Money
    total_topped_up: Money
    loans_paid: int
    loans_late: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


RunRead = SubsidyRunRead  # the short name importers use; the OpenAPI name must be unique


class RosterRow(FupinSchema):
    loan_id: uuid.UUID
    household_id: uuid.UUID | None
    head_name: str | None
    id_number_masked: str | None
    enterprise_name: str | None
    area_code: str
    coop_code: str
    principal: Money
    days: int
    rate: Decimal
    amount: Money
    paid_on: Day


class Roster(FupinSchema):
    run_id: uuid.UUID
    township_code: str
    quarter: str
    total: Money
    rows: list[RosterRow]


class LoanSubsidy(FupinSchema):
    loan_id: uuid.UUID
    eligible: bool
    reason: str
    rate: Decimal
    days: int
    amount: Money
    paid: bool
    paid_amount: Money | None = None
    paid_on: Day | None = None
    run_id: uuid.UUID | None = None


class CountySubsidyRuns(FupinSchema):
    """What a county-level request started: the runs it created and those requested before it."""

    county_code: str = Field(examples=["520123000000"])
    quarter: str = Field(examples=["2026Q1"])
    phase: str = Field(examples=["settlement"])
    requested: list[SubsidyRunRead] = Field(description="Runs this call requested, one per township for now; "
                                                        "follow each one's job at `GET /jobs?key=<job_key>`.")
    already_requested: list[SubsidyRunRead] = Field(
        description="Townships whose run for this quarter and phase existed before the call; left as they are.")
