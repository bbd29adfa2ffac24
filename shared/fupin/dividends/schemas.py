"""API shapes for pools, holdings, runs, rosters and a household's dividends. Amounts are strings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from fupin.schema import FupinSchema, NoFloat

MoneyIn = Annotated[Decimal, NoFloat, Field(max_digits=14, decimal_places=2, gt=0)]
RateIn = Annotated[Decimal, NoFloat, Field(max_digits=9, decimal_places=6, gt=0, lt=1)]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]
HoldingStatusName = Literal["active", "matured", "renewed", "redeemed", "redeemed_in_kind"]


class PoolCreate(FupinSchema):
    name: str = Field(min_length=1, max_length=200)
    operator_name: str = Field(min_length=1, max_length=200)
    operator_kind: Literal["company", "cooperative"]
    model: Literal["rate", "fixed"]
    rate: RateIn | None = Field(None, description="Yearly rate on the invested amount (rate model), e.g. \"0.03\"")
    fixed_amount: MoneyIn | None = Field(None, description="Yuan per household per year (fixed model), e.g. \"1000\"")
    term_years: int = Field(3, ge=1, le=30)
    start_on: date
    area_code: AreaCode = Field(description="County or township that runs the pool")
    insurance_premium: MoneyIn | None = Field(None, description="Cooperative model: yearly premium, e.g. \"216\"")
    insurance_cover: MoneyIn | None = Field(None, description="Cooperative model: cover, e.g. \"200000\"")
    per_person_cap: MoneyIn | None = Field(
        None, description="Largest holding per active household member, e.g. \"50000\" for 特惠贷 (人均可贷款5万元)"
    )

    @model_validator(mode="after")
    def _terms_match_model(self) -> PoolCreate:
        if self.model == "rate" and (self.rate is None or self.fixed_amount is not None):
            raise ValueError("the rate model takes `rate` and no `fixed_amount`")
        if self.model == "fixed" and (self.fixed_amount is None or self.rate is not None):
            raise ValueError("the fixed model takes `fixed_amount` and no `rate`")
        return self


class PoolRead(FupinSchema):
    id: uuid.UUID
    name: str
    operator_name: str
    operator_kind: str
    model: str
    rate: Decimal | None
    fixed_amount: Decimal | None
    term_years: int
    start_on: date
    area_code: str
    insurance_premium: Decimal | None
    insurance_cover: Decimal | None
    per_person_cap: Decimal | None
    created_at: datetime


class HoldingCreate(FupinSchema):
    household_id: uuid.UUID
    amount: MoneyIn
    start_on: date | None = Field(None, description="Default: the pool's start date")
    end_on: date | None = Field(None, description="Last day of the contract; default: start + the pool's term")
    loan_id: uuid.UUID | None = Field(None, description="The 特惠贷 loan whose money is invested")


class HoldingRead(FupinSchema):
    id: uuid.UUID
    pool_id: uuid.UUID
    household_id: uuid.UUID
    area_code: str
    amount: Decimal
    start_on: date
    end_on: date
    status: str
    loan_id: uuid.UUID | None
    closed_on: date | None


class RenewBody(FupinSchema):
    term_years: int | None = Field(None, ge=1, le=30, description="Default: the pool's term")


class RedeemBody(FupinSchema):
    in_kind: bool = Field(False, description="The household takes the animals back instead of the cash share")
    on: date | None = Field(None, description="Redemption date; default today (Asia/Shanghai)")


class RunCreate(FupinSchema):
    pool_id: uuid.UUID
    period: str = Field(
        pattern=r"^(\d{4}|\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2})$",
        description='A year ("2026") or an inclusive date range ("2026-01-01..2026-06-30")',
    )


class RunRead(FupinSchema):
    id: uuid.UUID
    pool_id: uuid.UUID
    area_code: str
    period: str
    period_start: date
    period_end: date
    job_key: str
    status: str
    run_on: date | None
    total: Decimal
    households: int
    persons: int
    entry_id: uuid.UUID | None = Field(description="The run's journal entry (operator → households)")
    requested_by: str
    created_at: datetime
    paid_at: datetime | None


class PayoutLine(FupinSchema):
    household_id: uuid.UUID
    household_no: str
    head_name: str
    area_code: str
    holding_id: uuid.UUID
    holding_amount: Decimal
    days_held: int
    amount: Decimal
    persons: int
    per_person: list[Decimal] = Field(description="The household's amount split among its persons, exact to the fen")


class RunDetail(RunRead):
    pool_name: str
    per_person: Decimal | None = Field(description="Run total ÷ persons, half-up to the fen (informational)")
    insurance_premiums: Decimal | None = Field(
        description="Cooperative model: premium × households paid, what the cooperative owes its insurer (informational)"
    )
    lines: list[PayoutLine]


class HouseholdDividend(FupinSchema):
    year: int
    pool_id: uuid.UUID
    pool_name: str
    run_id: uuid.UUID
    period: str
    period_end: date
    amount: Decimal
    persons: int


class HouseholdYear(FupinSchema):
    year: int
    total: Decimal


class HouseholdDividends(FupinSchema):
    household_id: uuid.UUID
    years: list[HouseholdYear]
    items: list[HouseholdDividend]
