"""Shapes of the offline batch sync (`POST /field/sync`)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from fupin.pairing.schemas import Funds, MeasureKind, MeasureStatus, VisitKind
from fupin.schema import FupinSchema

MAX_ITEMS = 500


class _Item(FupinSchema):
    client_id: uuid.UUID = Field(description="Made by the phone when the item was recorded; the item's id once "
                                 "synced (a visit's or measure's id), so a batch sent again creates nothing twice")
    recorded_at: AwareDatetime = Field(description="When the phone recorded it (its clock, with its offset)")


class SyncVisit(_Item):
    type: Literal["visit"]
    household_id: uuid.UUID
    cadre_id: uuid.UUID | None = Field(default=None, description="Required when staff record on a cadre's behalf")
    visit_date: date
    kind: VisitKind
    findings: Annotated[str, Field(max_length=4000)] = ""
    measures: Annotated[str, Field(max_length=4000)] = ""


class SyncMeasure(_Item):
    type: Literal["measure"]
    plan_id: uuid.UUID
    kind: MeasureKind
    description: Annotated[str, Field(min_length=1, max_length=500)]
    funds: Funds = Decimal("0")
    target_date: date | None = None
    status: MeasureStatus = "planned"


class SyncEvidence(_Item):
    type: Literal["evidence"]
    visit_id: uuid.UUID = Field(description="The visit's id (its client_id when it was recorded offline)")
    document_id: uuid.UUID = Field(description="A photo uploaded with POST /documents (target `unattached` while "
                                   "the visit was not synced yet)")


SyncItem = Annotated[SyncVisit | SyncMeasure | SyncEvidence, Field(discriminator="type")]


class SyncBatch(FupinSchema):
    device_id: Annotated[str, Field(max_length=100)] = ""
    items: Annotated[list[SyncItem], Field(min_length=1, max_length=MAX_ITEMS)]


class SyncItemResult(FupinSchema):
    client_id: uuid.UUID
    type: Literal["visit", "measure", "evidence"]
    status: Literal["created", "already_synced", "refused"]
    id: uuid.UUID | None = Field(default=None, description="The synced object (a visit, a measure, a document)")
    code: str | None = Field(default=None, description="Why it was refused, e.g. sync.household_transferred")
    detail: str | None = None
    detail_zh: str | None = None
    flags: list[str] = Field(default_factory=list, description="Evidence checks on a linked photo")


class SyncResults(FupinSchema):
    results: list[SyncItemResult]
    created: int
    already_synced: int
    refused: int
