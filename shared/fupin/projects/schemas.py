"""API shapes for projects. Amounts travel as JSON strings; floats are refused."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from fupin.money import Day, Money, MoneyIn, PositiveMoney
from fupin.schema import FupinSchema


class Kind(StrEnum):
    industry = "产业"
    infrastructure = "基础设施/组组通道路"
    science = "科技示范"
    training = "技能培训"
    culture = "文化"
    tourism = "旅游"
    relocation = "易地搬迁配套"
    other = "其他"


class ProjectStatus(StrEnum):
    proposed = "proposed"
    in_library = "in_library"
    approved = "approved"
    tendering = "tendering"
    in_progress = "in_progress"
    completed = "completed"
    accepted = "accepted"
    closed = "closed"
    suspended = "suspended"
    cancelled = "cancelled"


Status = ProjectStatus  # the short name importers use; the OpenAPI name must be unique


class Source(StrEnum):
    central = "central"
    provincial = "provincial"
    municipal = "municipal"
    county = "county"
    other = "other"


class BenefitKind(StrEnum):
    cash = "cash"
    jobs = "jobs"
    dividends = "dividends"
    infrastructure = "infrastructure"


class NoticeStage(StrEnum):
    pre_approval = "pre_approval"
    post_acceptance = "post_acceptance"


class Movement(StrEnum):
    allocation = "allocation"
    disbursement = "disbursement"


class PayeeKind(StrEnum):
    implementer = "implementer"
    bidder = "bidder"


_QUANTITY = re.compile(r"^\d{1,11}(\.\d{1,3})?$")


def _string_amount(v: Any) -> Any:
    """Quantities are plain decimal strings ("12.5"): no floats, no exponents, no separators."""
    if isinstance(v, Decimal):
        return v
    if not isinstance(v, str) or not _QUANTITY.fullmatch(v):
        raise ValueError('quantities are plain decimal strings such as "12.5"')
    return v


QuantityIn = Annotated[
    Decimal, BeforeValidator(_string_amount), Field(max_digits=14, decimal_places=3, ge=0),
    WithJsonSchema({"type": "string", "pattern": _QUANTITY.pattern, "examples": ["12.5"],
                    "description": "A quantity as a decimal string with at most three places"}),
]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class Quantity(FupinSchema):
    item: Text
    unit: Annotated[str, Field(min_length=1, max_length=20)]
    planned: QuantityIn
    done: QuantityIn = Decimal("0")


class ProjectCreate(FupinSchema):
    name: Text
    kind: Kind
    year: Annotated[int, Field(ge=2000, le=2100)]
    department: Annotated[str, Field(min_length=1, max_length=100)]
    implementing_unit: Text
    area_code: AreaCode
    townships: Annotated[list[AreaCode], Field(max_length=100)] = Field(default_factory=list)
    villages: Annotated[list[AreaCode], Field(max_length=500)] = Field(default_factory=list)
    quantities: Annotated[list[Quantity], Field(max_length=50)] = Field(default_factory=list)
    budget: dict[Source, MoneyIn]


class QuantityRead(FupinSchema):
    item: str
    unit: str
    planned: Decimal
    done: Decimal


class ProjectRead(FupinSchema):
    id: uuid.UUID
    name: str
    kind: str
    year: int
    department: str
    implementing_unit: str
    area_code: str
    townships: list[str]
    villages: list[str]
    quantities: list[QuantityRead]
    budget: dict[str, Money]
    budget_total: Money
    status: str
    suspended_from: str | None
    status_reason: str | None
    accepted_on: Day | None
    acceptance_team: str | None
    acceptance_result: str | None
    final_paid: bool
    created_at: datetime
    allowed_actions: list[str] = Field(description=(
        "Statuses the caller may move the project to now (`POST /projects/{id}/transitions` with `to`): the next "
        "step of proposed → in_library → approved → tendering → in_progress → completed → accepted → closed (or "
        "the status it was suspended from), `suspended`, `cancelled`. Empty when the caller's role lacks "
        "`project.transition`. `approved` and `closed` need a public notice whose period has ended, `in_progress` "
        "a winning bid, `accepted` beneficiaries, `acceptance_team` and `acceptance_result`; `suspended` and "
        "`cancelled` a `reason`."), examples=[["approved", "suspended", "cancelled"]])


class TransitionCreate(FupinSchema):
    to: Status
    on: Day | None = Field(default=None, description="Business date of the step; today (Asia/Shanghai) if omitted")
    reason: Annotated[str | None, Field(max_length=500)] = None
    acceptance_team: Annotated[str | None, Field(max_length=300)] = None
    acceptance_result: Annotated[str | None, Field(max_length=500)] = None


class TransitionRead(FupinSchema):
    id: uuid.UUID
    from_status: str
    to_status: str
    on: Day
    reason: str | None
    actor: str
    allowed_actions: list[str] = Field(default_factory=list, description=(
        "In the answer to a transition: what the caller may do next, as `allowed_actions` on the project. "
        "Empty in the history list."), examples=[["tendering", "suspended", "cancelled"]])


class NoticeCreate(FupinSchema):
    stage: NoticeStage
    starts_on: Day
    ends_on: Day
    content: Annotated[str, Field(max_length=2000)] = ""


class NoticeRead(FupinSchema):
    id: uuid.UUID
    stage: str
    starts_on: Day
    ends_on: Day
    content: str


class BidCreate(FupinSchema):
    bidder: Text
    amount: PositiveMoney
    winner: bool = False


class BidRead(FupinSchema):
    id: uuid.UUID
    bidder: str
    amount: Money
    winner: bool


class ProgressCreate(FupinSchema):
    percent: Annotated[int, Field(ge=0, le=100)]
    reported_on: Day
    note: Annotated[str, Field(max_length=1000)] = ""


class ProgressRead(FupinSchema):
    id: uuid.UUID
    percent: int
    reported_on: Day
    note: str


class HouseholdBenefitIn(FupinSchema):
    household_id: uuid.UUID
    kind: BenefitKind
    amount: MoneyIn


class BeneficiariesCreate(FupinSchema):
    villages: Annotated[list[AreaCode], Field(max_length=500)] = Field(default_factory=list)
    households: Annotated[list[HouseholdBenefitIn], Field(max_length=2000)] = Field(default_factory=list)


class HouseholdBenefitRead(FupinSchema):
    household_id: uuid.UUID
    village_code: str
    kind: str
    amount: Money


class BeneficiariesRead(FupinSchema):
    villages: list[str]
    households: list[HouseholdBenefitRead]


class FundCreate(FupinSchema):
    movement: Movement
    source: Source
    amount: PositiveMoney
    effective_on: Day
    payee_kind: PayeeKind | None = Field(default=None, description="Disbursements: implementing unit or winning bidder")
    milestone: Annotated[str | None, Field(max_length=200)] = None
    final: bool = Field(default=False, description="Final payment (尾款): only after acceptance")


class FundRead(FupinSchema):
    id: uuid.UUID
    movement: str
    source: str
    amount: Money
    effective_on: Day
    payee_kind: str | None
    payee: str | None
    milestone: str | None
    final: bool
    journal_entry_id: uuid.UUID


class FundsRead(FupinSchema):
    allocated: Money
    disbursed: Money
    budget: Money
    items: list[FundRead]


class SettingCreate(FupinSchema):
    county_code: AreaCode
    household_benefit_cap: PositiveMoney | None = None
    effective_from: Day
    effective_to: Day | None = None


class SettingRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_benefit_cap: Money | None
    effective_from: Day
    effective_to: Day | None


class HouseholdProjectRead(FupinSchema):
    project_id: uuid.UUID
    name: str
    kind: str
    year: int
    status: str
    benefit_kind: str
    amount: Money


class FundsReportRow(FupinSchema):
    project_id: uuid.UUID | None
    project_name: str | None
    source: str | None
    township_code: str | None
    year: int | None
    budget: Money
    allocated: Money
    disbursed: Money
    used_pct: Decimal | None = Field(description="disbursed ÷ budget × 100, half-up to 0.01; null when budget is 0")
