"""API shapes of the assessment: amounts and rates travel as strings, floats are refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from fupin.money import RATE_STRING, Day, Money, MoneyIn, rate_schema
from fupin.schema import FupinSchema

RateIn = Annotated[
    Decimal, RATE_STRING, Field(ge=0, le=1, max_digits=9, decimal_places=6), rate_schema("0.950000", "≥ 0, ≤ 1"),
]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]


class RepaymentPolicyCreate(FupinSchema):
    area_code: AreaCode
    effective_from: Day
    reward_threshold: RateIn = Decimal("0.950000")
    penalty_threshold: RateIn = Decimal("0.900000")
    quota_increase: RateIn = Decimal("0.100000")
    quota_cut: RateIn = Decimal("0.100000")


class RepaymentPolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: Day
    reward_threshold: Decimal
    penalty_threshold: Decimal
    quota_increase: Decimal
    quota_cut: Decimal
    created_by: str
    created_at: datetime


class RepaymentCheckRequest(FupinSchema):
    area_code: AreaCode  # a county (all its townships) or one township
    period_start: Day
    period_end: Day
    as_of: Day | None = None  # default: the period end, or today if earlier


class CheckRunRead(FupinSchema):
    job_id: uuid.UUID
    key: str
    status: str
    created: bool


class RepaymentCheckRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    county_code: str
    kind: str
    period_start: Day
    period_end: Day
    as_of: Day
    principal_due: Money
    principal_recovered: Money
    rate: Decimal | None
    band: str
    loans_due: int
    loans_recovered: int
    loans_overdue: int
    policy_id: uuid.UUID | None
    reward_threshold: Decimal
    penalty_threshold: Decimal
    quota_increase: Decimal
    quota_cut: Decimal
    job_key: str
    created_at: datetime


class RepaymentCheckLoanRead(FupinSchema):
    loan_id: uuid.UUID
    area_code: str
    principal: Money
    recovered: Money
    due_on: Day
    overdue: bool


class QuotaProposalRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    county_code: str
    year: int
    check_id: uuid.UUID
    band: str
    current_quota: Money | None
    quota_change: Decimal = Field(description="Share of the current quota added (+) or cut (−), 6 places", examples=["-0.200000"])
    proposed_quota: Money | None
    working_funds_eligible: bool
    reward: bool
    status: str
    confirmed_quota: Money | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    created_at: datetime


class QuotaConfirm(FupinSchema):
    quota: MoneyIn | None = None  # only when the proposal has no amount, or the office sets its own


class OverdueLoanRead(FupinSchema):
    loan_id: uuid.UUID
    area_code: str
    household_id: uuid.UUID | None
    enterprise_name: str | None
    principal: Money
    recovered: Money
    unpaid: Money
    due_on: Day
    days_overdue: int


class TownshipRateRead(FupinSchema):
    area_code: str
    name: str
    principal_due: Money
    principal_recovered: Money
    rate: Decimal | None
    band: str
    loans_due: int
    loans_overdue: int
    rank: int | None
    overdue_loans: list[OverdueLoanRead]


class RepaymentRiskRead(FupinSchema):
    area_code: str
    period_start: Day
    as_of: Day
    policy_id: uuid.UUID | None
    reward_threshold: Decimal
    penalty_threshold: Decimal
    principal_due: Money
    principal_recovered: Money
    rate: Decimal | None
    band: str
    bands: dict[str, int]
    ranking: list[TownshipRateRead]
    at_risk: list[TownshipRateRead] = Field(
        description="Every township with overdue household loans, whatever its band, lowest rate first")
