"""API shapes for monitoring (policies, monitored households, warnings, steps, measures, screenings and
reports). Money travels as decimal strings with at most two places; exponents, NaN and JSON floats are
refused; dates are strictly YYYY-MM-DD."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from fupin.households.schemas import RowError
from fupin.money import RATE_STRING, Day, Money, MoneyIn, PositiveMoney, rate_schema
from fupin.monitoring.rules import (
    DEFAULT_RULES,
    ClaimStatus,
    MeasureKind,
    MeasureStatus,
    MonitoringKind,
    RiskCause,
    RowOutcome,
    ScreeningSource,
    Status,
    Step,
    WarningSource,
)
from fupin.schema import FupinSchema

RateIn = Annotated[
    Decimal, RATE_STRING, Field(gt=0, le=1, max_digits=9, decimal_places=6), rate_schema("0.500000", "> 0, ≤ 1"),
]
TierRate = Annotated[
    Decimal, RATE_STRING, Field(ge=0, le=1, max_digits=9, decimal_places=6), rate_schema("0.600000", "≥ 0, ≤ 1"),
]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$", examples=["520123000000"])]
Text = Annotated[str, Field(max_length=500)]
Opinion = Annotated[str, Field(max_length=1000)]


def _money(description: str, example: str) -> Any:
    return Field(description=description, examples=[example])


def _optional_money(description: str, example: str) -> Any:
    return Field(None, description=description, examples=[example])


# --- policies -------------------------------------------------------------------------------------


class MonitoringPolicyCreate(FupinSchema):
    area_code: AreaCode = Field(description="The county")
    effective_from: Day
    income_line: PositiveMoney = Field(
        DEFAULT_RULES.income_line, examples=["6000.00"],
        description="Monitoring income line, yuan per person per year (default 6000.00, to be confirmed by the county)")
    expense_ratio: RateIn = Field(
        DEFAULT_RULES.expense_ratio, examples=["0.500000"],
        description="Medical out-of-pocket cost or disaster loss above this share of the household's annual income "
                    "raises a risk (default 0.500000, to be confirmed by the county)")
    decision_days: int = Field(DEFAULT_RULES.decision_days, ge=1, le=120,
                               description="Working days from warning to the county's decision (default 15)")
    elimination_months: int = Field(DEFAULT_RULES.elimination_months, ge=1, le=36,
                                    description="Months above the line before a risk may be eliminated (default 6)")
    measure_days: int = Field(DEFAULT_RULES.measure_days, ge=1, le=120,
                              description="Working days from the decision to monitor to the first measure (default 15)")
    note: str = Field("", max_length=300)


class MonitoringPolicyRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: Day
    income_line: Money
    expense_ratio: Decimal
    decision_days: int
    elimination_months: int
    measure_days: int
    note: str
    created_by: str
    created_at: datetime


class RulesInForce(FupinSchema):
    county_code: str
    on: Day
    policy_id: uuid.UUID | None
    source: Literal["county", "default"] = Field(
        description="`default`: the county has set no policy; the values are our defaults, to be confirmed by it")
    defaults_to_confirm: list[str] = Field(description="Settings still running on an unconfirmed default")
    income_line: Money = _money("Yuan per person per year", "6000.00")
    expense_ratio: Decimal = _money("Share of annual household income", "0.500000")
    decision_days: int
    elimination_months: int
    measure_days: int


# --- households and warnings ---------------------------------------------------------------------


class PersonIn(FupinSchema):
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=15, max_length=18, examples=["11010519491231002X"])
    relation: Literal["户主", "配偶", "子女", "父母", "孙辈", "兄弟姐妹", "其他"]


class MonitoredHouseholdCreate(FupinSchema):
    """A household outside the registry, entered just for monitoring, with the risk that brings it in."""

    area_code: AreaCode = Field(description="The village")
    kind: Literal[MonitoringKind.marginal, MonitoringKind.sudden_hardship]
    address: str = Field("", max_length=200)
    persons: list[PersonIn] = Field(min_length=1, max_length=30, description="Exactly one 户主")
    income_per_capita: MoneyIn = _money("Annual income per person, yuan", "5200.00")
    cause: RiskCause
    detail: Text = ""
    amount: MoneyIn | None = _optional_money("Expense or loss behind the report, yuan", "30000.00")
    reported_on: Day
    cadre_id: uuid.UUID | None = Field(None, description="The responsible cadre (pairing rules apply)")


class PersonRead(FupinSchema):
    id: uuid.UUID
    name: str
    id_number: str = Field(description="Masked unless the role sees full ID numbers")
    relation: str


class MonitoredHouseholdRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_id: uuid.UUID | None = Field(description="The registry household; null when entered just for monitoring")
    head_name: str
    address: str
    kind: MonitoringKind
    cause: RiskCause
    status: Status
    cycle: int
    persons: int
    income_per_capita: Money
    opened_on: Day
    decision_due_on: Day = Field(description="Warning date + the policy's working days (调休 counted)")
    decided_on: Day | None
    measure_due_on: Day | None
    stable_since: Day | None
    closed_on: Day | None
    cadre_id: uuid.UUID | None
    decision_overdue: bool = Field(False, description="Still undecided after the decision deadline")
    measures_overdue: bool = Field(False, description="Monitored, and no measure started by the measure deadline")
    created_at: datetime


class MonitoredHouseholdDetail(MonitoredHouseholdRead):
    people: list[PersonRead]


class WarningCreate(FupinSchema):
    """A risk reported by the household (through the village committee) or found on a cadre's visit."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"source": "self_report", "household_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "cause": "illness",
         "detail": "户主住院,自付医疗费较高", "amount": "30000.00", "raised_on": "2026-09-25"},
    ]})

    source: Literal[WarningSource.self_report, WarningSource.cadre_visit]
    household_id: uuid.UUID | None = Field(None, description="A registry household that has exited")
    monitored_household_id: uuid.UUID | None = Field(None, description="A household already under the programme")
    kind: Literal[MonitoringKind.unstable_exited, MonitoringKind.sudden_hardship] | None = Field(
        None, description="For a registry household: default unstable_exited")
    cause: RiskCause
    detail: Text = ""
    amount: MoneyIn | None = _optional_money("Expense or loss behind the report, yuan", "30000.00")
    raised_on: Day
    visit_id: uuid.UUID | None = Field(None, description="The pairing visit that found the risk (cadre_visit)")

    @model_validator(mode="after")
    def _one_subject(self) -> WarningCreate:
        if (self.household_id is None) == (self.monitored_household_id is None):
            raise ValueError("give exactly one of household_id and monitored_household_id")
        return self


class WarningRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    monitored_household_id: uuid.UUID
    cycle: int
    source: WarningSource
    screening_id: uuid.UUID | None
    screening_source: ScreeningSource | None
    visit_id: uuid.UUID | None
    cause: RiskCause
    amount: Money | None
    detail: str
    raised_on: Day
    cadre_id: uuid.UUID | None = Field(description="The cadre the warning is routed to")
    opened_cycle: bool = Field(description="True when this warning opened the cycle; false when added to an open one")
    created_by: str


class CadreAssign(FupinSchema):
    cadre_id: uuid.UUID
    on: Day


# --- steps -----------------------------------------------------------------------------------------


class LivingChecks(FupinSchema):
    """两不愁三保障 and drinking water: true when guaranteed."""

    food: bool
    clothing: bool
    compulsory_education: bool
    basic_medical: bool
    housing_safety: bool
    drinking_water: bool


class VerificationIn(FupinSchema):
    persons: int = Field(ge=1, le=30)
    income_per_capita: MoneyIn = _money("Annual income per person, yuan", "5999.99")
    medical_expense: MoneyIn = Field(Decimal("0"), examples=["12000.00"], description="Medical out-of-pocket, yuan")
    disaster_loss: MoneyIn = Field(Decimal("0"), examples=["0.00"], description="Disaster loss, yuan")
    checks: LivingChecks


class EliminationIn(FupinSchema):
    income_per_capita: MoneyIn = _money("Annual income per person, yuan", "7200.00")
    stable_since: Day = Field(description="Since when the income has been above the line")
    checks: LivingChecks


class StepIn(FupinSchema):
    step: Step
    on: Day
    opinion: Opinion = ""
    verification: VerificationIn | None = Field(None, description="Required for `verify`")
    elimination: EliminationIn | None = Field(None, description="Required for `propose_elimination`")


class MonitoringStepRead(FupinSchema):
    id: uuid.UUID
    cycle: int
    step: str
    from_status: str
    to_status: str
    role: str
    actor: str
    on_date: Day
    opinion: str
    details: dict[str, Any]


StepRead = MonitoringStepRead  # the short name importers use; the OpenAPI name must be unique


# --- measures --------------------------------------------------------------------------------------


class MonitoringMeasureCreate(FupinSchema):
    kind: MeasureKind
    description: str = Field(min_length=1, max_length=500)
    responsible_unit: str = Field(min_length=1, max_length=100, examples=["县医疗保障局"])
    cadre_id: uuid.UUID | None = Field(None, description="The cadre responsible (default: a cadre's own)")
    started_on: Day
    amount: MoneyIn | None = _optional_money("Funds involved, yuan", "3000.00")
    status: MeasureStatus = MeasureStatus.planned


MeasureCreate = MonitoringMeasureCreate  # the short name importers use; the OpenAPI name must be unique


class MonitoringMeasureUpdate(FupinSchema):
    status: MeasureStatus


MeasureUpdate = MonitoringMeasureUpdate  # the short name importers use; the OpenAPI name must be unique


class MonitoringMeasureRead(FupinSchema):
    id: uuid.UUID
    monitored_household_id: uuid.UUID
    area_code: str
    cycle: int
    kind: MeasureKind
    description: str
    responsible_unit: str
    cadre_id: uuid.UUID | None
    started_on: Day
    amount: Money | None
    status: MeasureStatus
    claim_id: uuid.UUID | None
    created_by: str


MeasureRead = MonitoringMeasureRead  # the short name importers use; the OpenAPI name must be unique


# --- screenings ------------------------------------------------------------------------------------


class ScreeningRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    source: ScreeningSource
    filename: str
    received_on: Day
    rows: int
    matched: int
    warnings: int = Field(description="Rows that opened a warning")
    attached: int = Field(description="Rows added to a household's open case")
    below_threshold: int
    in_registry: int
    unmatched: int
    created_by: str
    created_at: datetime


class ScreeningRowRead(FupinSchema):
    row_no: int
    id_masked: str
    name: str | None
    amount: Money | None
    event_on: Day
    outcome: RowOutcome
    monitored_household_id: uuid.UUID | None
    household_id: uuid.UUID | None
    warning_id: uuid.UUID | None


class ScreeningRejected(FupinSchema):
    errors: list[RowError]


# --- reports ---------------------------------------------------------------------------------------


class TownshipTrend(FupinSchema):
    area_code: str
    month: str = Field(examples=["2026-09"])
    warned: int
    monitored: int
    eliminated: int


class ClaimFigures(FupinSchema):
    by_status: dict[ClaimStatus, int]
    paid_total: Money = _money("Yuan paid in the period", "1907500.00")
    persons_aided: int
    per_person: Money | None = _money("Paid ÷ persons aided, half-up to the fen", "7393.41")


class MonitoringReport(FupinSchema):
    area_code: str
    year: int
    households: int = Field(description="Households with a cycle opened in the year")
    by_kind: dict[MonitoringKind, int]
    by_cause: dict[RiskCause, int]
    by_area: dict[str, int] = Field(description="By township")
    by_month: dict[str, int] = Field(description="Cycles opened per month")
    under_monitoring: int
    with_measures: int
    measures_share: Decimal | None = Field(description="with_measures ÷ under_monitoring, 6 places")
    decided: int
    decided_late: int
    average_days_to_decision: Decimal | None = Field(description="Calendar days, 2 places")
    overdue_now: int
    eliminated: int
    claims: ClaimFigures
    trend: list[TownshipTrend]
