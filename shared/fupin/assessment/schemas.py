"""API shapes of the assessment: amounts and rates travel as strings, floats are refused."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from fupin.schema import FupinSchema, NoFloat

RateIn = Annotated[Decimal, NoFloat, Field(ge=0, le=1, max_digits=9, decimal_places=6)]
AmountIn = Annotated[Decimal, NoFloat, Field(ge=0, max_digits=14, decimal_places=2)]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]


class RepaymentPolicyCreate(FupinSchema):
    area_code: AreaCode
    effective_from: date
    reward_threshold: RateIn = Decimal("0.950000")
    penalty_threshold: RateIn = Decimal("0.900000")
    quota_increase: RateIn = Decimal("0.100000")
    quota_cut: RateIn = Decimal("0.100000")


class RepaymentPolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: date
    reward_threshold: Decimal
    penalty_threshold: Decimal
    quota_increase: Decimal
    quota_cut: Decimal
    created_by: str
    created_at: datetime


class RepaymentCheckRequest(FupinSchema):
    area_code: AreaCode  # a county (all its townships) or one township
    period_start: date
    period_end: date
    as_of: date | None = None  # default: the period end, or today if earlier


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
    period_start: date
    period_end: date
    as_of: date
    principal_due: Decimal
    principal_recovered: Decimal
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
    principal: Decimal
    recovered: Decimal
    due_on: date
    overdue: bool


class QuotaProposalRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    county_code: str
    year: int
    check_id: uuid.UUID
    band: str
    current_quota: Decimal | None
    quota_change: Decimal
    proposed_quota: Decimal | None
    working_funds_eligible: bool
    reward: bool
    status: str
    confirmed_quota: Decimal | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    created_at: datetime


class QuotaConfirm(FupinSchema):
    quota: AmountIn | None = None  # only when the proposal has no amount, or the office sets its own


class OverdueLoanRead(FupinSchema):
    loan_id: uuid.UUID
    area_code: str
    household_id: uuid.UUID | None
    enterprise_name: str | None
    principal: Decimal
    recovered: Decimal
    unpaid: Decimal
    due_on: date
    days_overdue: int


class TownshipRateRead(FupinSchema):
    area_code: str
    name: str
    principal_due: Decimal
    principal_recovered: Decimal
    rate: Decimal | None
    band: str
    loans_due: int
    loans_overdue: int
    rank: int | None
    overdue_loans: list[OverdueLoanRead]


class RepaymentRiskRead(FupinSchema):
    area_code: str
    period_start: date
    as_of: date
    policy_id: uuid.UUID | None
    reward_threshold: Decimal
    penalty_threshold: Decimal
    principal_due: Decimal
    principal_recovered: Decimal
    rate: Decimal | None
    band: str
    bands: dict[str, int]
    ranking: list[TownshipRateRead]
    at_risk: list[TownshipRateRead] = Field(
        description="Every township with overdue household loans, whatever its band, lowest rate first")
