"""API shapes for pairing: units, cadres, assignments, teams, pairings, visits, help plans, reports."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from fupin.money import Day, Money, MoneyIn
from fupin.schema import FupinSchema

AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]
Level = Literal["province", "city", "county", "township"]
UnitKind = Literal["bureau", "school", "enterprise", "other"]
CadreStatus = Literal["active", "retired", "transferred"]
VisitKind = Literal["routine", "condolence", "survey"]
MeasureKind = Literal["产业", "就业", "教育", "健康", "兜底保障", "易地搬迁", "金融", "技能培训", "其他"]
MeasureStatus = Literal["planned", "in_progress", "done", "cancelled"]
Name = Annotated[str, Field(min_length=1, max_length=100)]


Funds = MoneyIn


# -- units and cadres --------------------------------------------------------------------------


class HelpingUnitCreate(FupinSchema):
    area_code: AreaCode = Field(description="The county the unit works in")
    name: Name
    kind: UnitKind
    level: Level = "county"
    contact: Annotated[str, Field(max_length=100)] = ""


class HelpingUnitUpdate(FupinSchema):
    name: Name | None = None
    contact: Annotated[str, Field(max_length=100)] | None = None
    active: bool | None = None


class HelpingUnitRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    name: str
    kind: str
    level: str
    contact: str
    active: bool


class CadreCreate(FupinSchema):
    unit_id: uuid.UUID
    name: Annotated[str, Field(min_length=1, max_length=50)]
    level: Level
    contact: Annotated[str, Field(max_length=100)] = ""
    user_id: uuid.UUID | None = Field(default=None, description="An app_user with role cadre")


class CadreUpdate(FupinSchema):
    name: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    contact: Annotated[str, Field(max_length=100)] | None = None
    status: CadreStatus | None = None


class CadreRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    unit_id: uuid.UUID
    name: str
    level: str
    contact: str
    status: str
    user_id: uuid.UUID | None


class HandoverItem(FupinSchema):
    household_id: uuid.UUID
    successor_cadre_id: uuid.UUID


class HandoverRequest(FupinSchema):
    handover_date: Day
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    items: Annotated[list[HandoverItem], Field(min_length=1, max_length=500)]


class HandoverResult(FupinSchema):
    cadre_id: uuid.UUID
    ended: int
    created: list[PairingRead]


# -- villages ----------------------------------------------------------------------------------


class VillageAssignmentCreate(FupinSchema):
    unit_id: uuid.UUID
    village_code: AreaCode
    lead: bool = False
    start_date: Day
    end_date: Day | None = None


class VillageAssignmentRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    unit_id: uuid.UUID
    lead: bool
    start_date: Day
    end_date: Day | None


class WorkTeamCreate(FupinSchema):
    village_code: AreaCode
    unit_id: uuid.UUID | None = None
    first_secretary_id: uuid.UUID | None = None
    leader_id: uuid.UUID | None = None
    member_ids: Annotated[list[uuid.UUID], Field(max_length=50, default_factory=list)]
    start_date: Day
    end_date: Day | None = None


class WorkTeamRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    unit_id: uuid.UUID | None
    first_secretary_id: uuid.UUID | None
    leader_id: uuid.UUID | None
    member_ids: list[uuid.UUID]
    start_date: Day
    end_date: Day | None


# -- pairings and settings ---------------------------------------------------------------------


class PairingCreate(FupinSchema):
    cadre_id: uuid.UUID
    household_id: uuid.UUID
    start_date: Day


class PairingEnd(FupinSchema):
    end_date: Day
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    successor_cadre_id: uuid.UUID | None = Field(
        default=None, description="Required when the household has not exited and no other active cadre remains"
    )


class PairingRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    cadre_id: uuid.UUID
    household_id: uuid.UUID
    start_date: Day
    end_date: Day | None
    end_reason: str | None
    successor_id: uuid.UUID | None


class PairingEndResult(FupinSchema):
    ended: PairingRead
    successor: PairingRead | None


class PairingSettingCreate(FupinSchema):
    county_code: AreaCode
    effective_from: Day
    max_households_per_cadre: Annotated[int, Field(ge=1, le=1000)] | None = None
    visits_required: Annotated[int, Field(ge=1, le=31)] = 1
    visit_period: Literal["month", "quarter"] = "month"


class PairingSettingRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    effective_from: Day
    max_households_per_cadre: int | None
    visits_required: int
    visit_period: str


# -- visits and plans --------------------------------------------------------------------------


class VisitCreate(FupinSchema):
    household_id: uuid.UUID
    cadre_id: uuid.UUID | None = Field(default=None, description="Required when staff record on a cadre's behalf")
    visit_date: Day
    kind: VisitKind
    findings: Annotated[str, Field(max_length=4000)] = ""
    measures: Annotated[str, Field(max_length=4000)] = ""
    photo_refs: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20, default_factory=list)]


class VisitRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_id: uuid.UUID
    cadre_id: uuid.UUID
    visit_date: Day
    kind: str
    findings: str
    measures: str
    photo_refs: list[str]
    recorded_by: uuid.UUID | None
    on_behalf: bool


class PairingMeasureCreate(FupinSchema):
    kind: MeasureKind
    description: Annotated[str, Field(min_length=1, max_length=500)]
    funds: Funds = Decimal("0")
    target_date: Day | None = None
    status: MeasureStatus = "planned"


MeasureCreate = PairingMeasureCreate  # the short name importers use; the OpenAPI name must be unique


class PairingMeasureUpdate(FupinSchema):
    description: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    funds: Funds | None = None
    target_date: Day | None = None
    status: MeasureStatus | None = None


MeasureUpdate = PairingMeasureUpdate  # the short name importers use; the OpenAPI name must be unique


class PairingMeasureRead(FupinSchema):
    id: uuid.UUID
    plan_id: uuid.UUID
    kind: str
    description: str
    funds: Money
    target_date: Day | None
    status: str


MeasureRead = PairingMeasureRead  # the short name importers use; the OpenAPI name must be unique


class HelpPlanCreate(FupinSchema):
    household_id: uuid.UUID
    year: Annotated[int, Field(ge=2000, le=2100)]
    cadre_id: uuid.UUID | None = Field(default=None, description="Defaults to the calling cadre")
    measures: Annotated[list[MeasureCreate], Field(max_length=50, default_factory=list)]


class HelpPlanRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_id: uuid.UUID
    year: int
    cadre_id: uuid.UUID
    measures: list[MeasureRead]
    total_funds: Money


# -- reports -----------------------------------------------------------------------------------


class UncoveredHousehold(FupinSchema):
    household_id: uuid.UUID
    household_no: str
    head_name: str
    area_code: str


class CoverageReport(FupinSchema):
    area_code: str
    as_of: Day
    households: int
    covered: int
    rate: Decimal | None = Field(description="covered ÷ households to 6 places (half-up); null when no households")
    percent: Decimal | None = Field(description="rate × 100 to 2 places (half-up)")
    note: str | None = None
    uncovered: list[UncoveredHousehold]


class OverdueHousehold(FupinSchema):
    household_id: uuid.UUID
    household_no: str
    head_name: str
    area_code: str
    visits: int
    required: int
    cadre_ids: list[uuid.UUID]
    cadre_names: list[str]


class VisitRateReport(FupinSchema):
    area_code: str
    period_start: Day
    period_end: Day
    paired_households: int
    meeting: int
    rate: Decimal | None
    percent: Decimal | None
    note: str | None = None
    overdue: list[OverdueHousehold]


class CadreWorkload(FupinSchema):
    cadre_id: uuid.UUID
    name: str
    unit_id: uuid.UUID
    status: str
    active_households: int
    visits: int


class UnitWorkload(FupinSchema):
    unit_id: uuid.UUID
    name: str
    cadres: int
    active_households: int
    visits: int


class WorkloadReport(FupinSchema):
    area_code: str
    period_start: Day
    period_end: Day
    units: list[UnitWorkload]
    cadres: list[CadreWorkload]


class PlanGap(FupinSchema):
    household_id: uuid.UUID
    household_no: str
    head_name: str
    area_code: str
    plan_id: uuid.UUID | None
    problem: Literal["no_plan", "no_measure", "overdue_measure"]
    overdue_measures: int


class PlanGapReport(FupinSchema):
    area_code: str
    year: int
    as_of: Day
    households: list[PlanGap]


HandoverResult.model_rebuild()
