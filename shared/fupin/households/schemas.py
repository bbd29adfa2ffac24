"""API shapes for households, members, transitions and history. Amounts travel as strings."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from fupin.households.rules import HouseholdStatus
from fupin.money import Day, Money, MoneyIn
from fupin.schema import FupinSchema

Category = Literal["general", "dibao", "tekun"]
Cause = Literal[
    "illness", "disability", "schooling", "disaster", "lack_land", "lack_water", "lack_skills", "lack_labour",
    "lack_capital", "transport", "lack_motivation",
]
Labour = Literal["ordinary", "skilled", "weak", "lost", "none"]
Relation = Literal["户主", "配偶", "子女", "父母", "孙辈", "兄弟姐妹", "其他"]
Status = Literal[
    "applied", "surveyed", "village_reviewed", "township_reviewed", "county_announced", "registered", "rejected",
    "exited", "returned_to_poverty", "removed",
]
VillageCode = Annotated[str, Field(pattern=r"^\d{12}$")]


class MemberIn(FupinSchema):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    sex: Literal["M", "F"] | None = None
    birth_date: Day | None = None
    relation: Relation
    labour: Labour
    full_civil_capacity: bool = True
    in_school: bool = False
    health: Annotated[str, Field(max_length=32)] = "健康"
    disability: Annotated[str | None, Field(max_length=32)] = None


class MemberUpdate(FupinSchema):
    name: Annotated[str | None, Field(min_length=1, max_length=50)] = None
    relation: Relation | None = None
    labour: Labour | None = None
    full_civil_capacity: bool | None = None
    in_school: bool | None = None
    health: Annotated[str | None, Field(max_length=32)] = None
    disability: Annotated[str | None, Field(max_length=32)] = None
    active: bool | None = None


class MemberRead(FupinSchema):
    id: uuid.UUID
    name: str
    id_number: str  # masked unless the caller's role may see it (rules.shown_id)
    sex: str
    birth_date: Day
    relation: str
    labour: str
    full_civil_capacity: bool
    in_school: bool
    health: str
    disability: str | None
    active: bool


class HouseholdCreate(FupinSchema):
    area_code: VillageCode
    household_no: Annotated[str, Field(min_length=1, max_length=32)]
    head_name: Annotated[str, Field(min_length=1, max_length=50)]
    address: Annotated[str, Field(max_length=200)] = ""
    category: Category
    main_cause: Cause
    secondary_causes: Annotated[list[Cause], Field(default_factory=list, max_length=10)]
    income_per_capita: MoneyIn = Decimal("0")
    family_planning: bool = False
    veteran: bool = False
    applied_on: Day
    members: Annotated[list[MemberIn], Field(min_length=1, max_length=30)]


class HouseholdUpdate(FupinSchema):
    head_name: Annotated[str | None, Field(min_length=1, max_length=50)] = None
    address: Annotated[str | None, Field(max_length=200)] = None
    category: Category | None = None
    main_cause: Cause | None = None
    secondary_causes: list[Cause] | None = None
    income_per_capita: MoneyIn | None = None
    family_planning: bool | None = None
    veteran: bool | None = None


class HouseholdSummary(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_no: str
    head_name: str
    address: str
    category: str
    main_cause: str
    secondary_causes: list[str]
    income_per_capita: Money
    family_planning: bool
    veteran: bool
    status: HouseholdStatus
    year_identified: int | None
    year_exited: int | None
    created_at: datetime


ALLOWED_STEPS_DOC = (
    "Statuses the caller's role may move the household to now (`POST /households/{id}/transitions` with "
    "`to`), in workflow order. `village_reviewed` and `township_reviewed` (公示) need `notice_start` and "
    "`notice_end`, the notice over by `on`; `rejected`, `removed` and `returned_to_poverty` need `reason`; "
    "`exited` needs `year` and all five `confirmations` (两不愁三保障). Dates may not precede the previous step.")


class HouseholdRead(HouseholdSummary):
    members: list[MemberRead]
    allowed_actions: list[str] = Field(description=ALLOWED_STEPS_DOC, examples=[["township_reviewed", "rejected"]])


class TransitionIn(FupinSchema):
    to: Status
    on: Day
    notice_start: Day | None = None
    notice_end: Day | None = None
    reason: Annotated[str | None, Field(min_length=1, max_length=500)] = None
    year: Annotated[int | None, Field(ge=2000, le=2100)] = None
    confirmations: dict[Literal["food", "clothing", "education", "medical", "housing"], bool] | None = None


class EventRead(FupinSchema):
    id: uuid.UUID
    kind: str
    from_status: str | None
    to_status: str | None
    occurred_on: Day
    actor_name: str
    actor_role: str
    notice_start: Day | None
    notice_end: Day | None
    reason: str | None
    year: int | None
    details: dict[str, Any]
    recorded_at: datetime
    allowed_actions: list[str] = Field(default_factory=list, description=(
        "In the answer to a step: what the caller may do next, as `allowed_actions` on the household. "
        "Empty in the history lists."), examples=[[]])


class RowError(FupinSchema):
    row: int
    column: str
    code: str
    message: str


class ImportResult(FupinSchema):
    households: int
    members: int


class HouseholdStats(FupinSchema):
    area_code: str
    households: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_cause: dict[str, int]
    poor_persons: int
    population: int
    incidence: str  # ratio, 6 decimals, half-up (e.g. "0.007319")
    incidence_percent: str  # e.g. "0.73"
