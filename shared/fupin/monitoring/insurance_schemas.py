"""API shapes for poverty-prevention insurance (防贫保险): policies with payout tiers, premiums, claims and
their bills. Money is a decimal string with at most two places."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import Field, model_validator

from fupin.money import Day, Money
from fupin.monitoring.rules import ClaimStatus
from fupin.monitoring.schemas import AreaCode, MoneyIn, Opinion, PositiveMoney, TierRate
from fupin.schema import FupinSchema


class TierIn(FupinSchema):
    start: MoneyIn = Field(description="Yuan of cost above the deductible where the tier starts", examples=["40000.00"])
    rate: TierRate = Field(description="Share paid of each yuan in the tier", examples=["0.600000"])


class InsurancePolicyCreate(FupinSchema):
    area_code: AreaCode = Field(description="The county")
    name: str = Field(min_length=1, max_length=200, examples=["2026年度防贫保险"])
    insurer: str = Field(min_length=1, max_length=200, examples=["太平洋财险"])
    effective_from: Day
    effective_to: Day = Field(description="Last day covered, inclusive")
    insured_persons: int = Field(gt=0, le=100_000_000, examples=[72000])
    premium_per_person: PositiveMoney = Field(examples=["50.00"], description="Yuan per person per year")
    deductible: MoneyIn = Field(examples=["20000.00"], description="Out-of-pocket cost not covered, yuan per claim")
    annual_cap: PositiveMoney = Field(examples=["300000.00"], description="Most paid per person per policy period")
    tiers: list[TierIn] = Field(min_length=1, max_length=10, description="First tier starts at 0.00; starts increase")

    @model_validator(mode="after")
    def _dates(self) -> InsurancePolicyCreate:
        if self.effective_to < self.effective_from:
            raise ValueError("effective_to precedes effective_from")
        return self


class TierRead(FupinSchema):
    start: Money
    rate: Decimal


class InsurancePolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    name: str
    insurer: str
    effective_from: Day
    effective_to: Day
    insured_persons: int
    premium_per_person: Money
    premium_total: Money = Field(examples=["3600000.00"], description="insured_persons × premium_per_person")
    deductible: Money
    annual_cap: Money
    tiers: list[TierRead]
    premium_entry_id: uuid.UUID | None = Field(description="The journal entry that funded the county insurance fund")
    premium_posted_on: Day | None
    created_by: str
    created_at: datetime


class PremiumIn(FupinSchema):
    on: Day


class BillIn(FupinSchema):
    hospital: str = Field(min_length=1, max_length=100, examples=["县人民医院"])
    bill_no: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z\-_/]+$", examples=["ZY2026-000123"])
    bill_date: Day
    total_cost: MoneyIn = Field(examples=["587515.31"])
    out_of_pocket: MoneyIn = Field(examples=["268010.10"])

    @model_validator(mode="after")
    def _consistent(self) -> BillIn:
        if self.out_of_pocket > self.total_cost:
            raise ValueError("out_of_pocket exceeds total_cost")
        return self


class ClaimCreate(FupinSchema):
    monitored_household_id: uuid.UUID
    person_id: uuid.UUID = Field(description="The insured person: a registry member or a monitored person of the household")
    submitted_on: Day
    bills: list[BillIn] = Field(min_length=1, max_length=50)


class ClaimStepIn(FupinSchema):
    on: Day
    opinion: Opinion = ""
    cadre_id: uuid.UUID | None = Field(
        None, description="`pay`: the cadre to pair with the aided household when it has none (pairing rules apply)")


class BillRead(FupinSchema):
    id: uuid.UUID
    hospital: str
    bill_no: str
    bill_date: Day
    total_cost: Money
    out_of_pocket: Money


class ClaimRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    policy_id: uuid.UUID
    monitored_household_id: uuid.UUID
    person_id: uuid.UUID
    person_name: str
    id_masked: str
    total_cost: Money
    out_of_pocket: Money
    payable: Money | None = Field(examples=["181209.09"], description="The tiered amount, set at assessment")
    status: ClaimStatus
    submitted_on: Day
    submitted_by: str
    assessed_on: Day | None
    assessed_by: str | None
    approved_on: Day | None
    approved_by: str | None
    paid_on: Day | None
    paid_by: str | None
    rejected_on: Day | None
    opinion: str
    entry_id: uuid.UUID | None = Field(description="The payout's journal entry (county insurance fund → household)")


class ClaimDetail(ClaimRead):
    bills: list[BillRead]
