"""API shapes for pools, holdings, runs, rosters and a household's dividends. Amounts are strings."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from fupin.money import RATE_STRING, Day, Money, PositiveMoney, rate_schema
from fupin.schema import FupinSchema

RateIn = Annotated[
    Decimal, RATE_STRING, Field(gt=0, lt=1, max_digits=9, decimal_places=6), rate_schema("0.060000", "> 0, < 1"),
]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]
HoldingStatusName = Literal["active", "matured", "renewed", "redeemed", "redeemed_in_kind"]


class PoolCreate(FupinSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "茶叶合作社分红池", "operator_name": "云雾茶叶专业合作社", "operator_kind": "cooperative",
         "model": "rate", "rate": "0.060000", "term_years": 3, "start_on": "2026-01-01",
         "area_code": "520123000000", "per_person_cap": "50000.00"},
        {"name": "光伏电站收益", "operator_name": "县能源公司", "operator_kind": "company", "model": "fixed",
         "fixed_amount": "1000.00", "start_on": "2026-01-01", "area_code": "520123000000"},
    ]})

    name: str = Field(min_length=1, max_length=200)
    operator_name: str = Field(min_length=1, max_length=200)
    operator_kind: Literal["company", "cooperative"]
    model: Literal["rate", "fixed"]
    rate: RateIn | None = Field(None, description="Yearly rate on the invested amount (rate model), e.g. \"0.03\"")
    fixed_amount: PositiveMoney | None = Field(None, description="Yuan per household per year (fixed model), e.g. \"1000\"")
    term_years: int = Field(3, ge=1, le=30)
    start_on: Day
    area_code: AreaCode = Field(description="County or township that runs the pool")
    insurance_premium: PositiveMoney | None = Field(None, description="Cooperative model: yearly premium, e.g. \"216\"")
    insurance_cover: PositiveMoney | None = Field(None, description="Cooperative model: cover, e.g. \"200000\"")
    per_person_cap: PositiveMoney | None = Field(
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
    fixed_amount: Money | None
    term_years: int
    start_on: Day
    area_code: str
    insurance_premium: Money | None
    insurance_cover: Money | None
    per_person_cap: Money | None
    created_at: datetime


class HoldingCreate(FupinSchema):
    household_id: uuid.UUID
    amount: PositiveMoney
    start_on: Day | None = Field(None, description="Default: the pool's start date")
    end_on: Day | None = Field(None, description="Last day of the contract; default: start + the pool's term")
    loan_id: uuid.UUID | None = Field(None, description="The 特惠贷 loan whose money is invested")


class HoldingRead(FupinSchema):
    id: uuid.UUID
    pool_id: uuid.UUID
    household_id: uuid.UUID
    area_code: str
    amount: Money
    start_on: Day
    end_on: Day
    status: str
    loan_id: uuid.UUID | None
    closed_on: Day | None
    allowed_actions: list[str] = Field(default_factory=list, description=(
        "`renew` and `redeem` (`POST …/holdings/{id}/renew`, `…/redeem`) while the holding is open and the caller "
        "may manage holdings; empty once it is redeemed or for readers."), examples=[["renew", "redeem"]])


class RenewBody(FupinSchema):
    term_years: int | None = Field(None, ge=1, le=30, description="Default: the pool's term")


class RedeemBody(FupinSchema):
    in_kind: bool = Field(False, description="The household takes the animals back instead of the cash share")
    on: Day | None = Field(None, description="Redemption date; default today (Asia/Shanghai)")


class DividendRunCreate(FupinSchema):
    pool_id: uuid.UUID
    period: str = Field(
        pattern=r"^(\d{4}|\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2})$",
        description='A year ("2026") or an inclusive date range ("2026-01-01..2026-06-30")',
        examples=["2026", "2026-01-01..2026-06-30"],
    )


RunCreate = DividendRunCreate  # the short name importers use; the OpenAPI name must be unique


class DividendRunRead(FupinSchema):
    id: uuid.UUID
    pool_id: uuid.UUID
    area_code: str
    period: str
    period_start: Day
    period_end: Day
    job_key: str
    status: str
    run_on: Day | None
    total: Money
    households: int
    persons: int
    entry_id: uuid.UUID | None = Field(description="The run's journal entry (operator → households)")
    requested_by: str
    created_at: datetime
    paid_at: datetime | None


RunRead = DividendRunRead  # the short name importers use; the OpenAPI name must be unique


class PayoutLine(FupinSchema):
    household_id: uuid.UUID
    household_no: str
    head_name: str
    area_code: str
    holding_id: uuid.UUID
    holding_amount: Money
    days_held: int
    amount: Money
    persons: int
    per_person: list[Money] = Field(description="The household's amount split among its persons, exact to the fen")


class RunDetail(DividendRunRead):
    pool_name: str
    per_person: Money | None = Field(description="Run total ÷ persons, half-up to the fen (informational)")
    insurance_premiums: Money | None = Field(
        description="Cooperative model: premium × households paid, what the cooperative owes its insurer (informational)"
    )
    lines: list[PayoutLine]


class HouseholdDividend(FupinSchema):
    year: int
    pool_id: uuid.UUID
    pool_name: str
    run_id: uuid.UUID
    period: str
    period_end: Day
    amount: Money
    persons: int


class HouseholdYear(FupinSchema):
    year: int
    total: Money


class HouseholdDividends(FupinSchema):
    household_id: uuid.UUID
    years: list[HouseholdYear]
    items: list[HouseholdDividend]
