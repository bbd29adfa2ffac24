"""API shapes of documents, the archive report and the evidence flags."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field, WithJsonSchema

from fupin.documents.rules import DocumentKind
from fupin.money import decimal_string
from fupin.schema import FupinSchema

COORDINATE_PATTERN = r"^-?\d{1,3}(\.\d{1,6})?$"

Coordinate = Annotated[
    Decimal,
    decimal_string(COORDINATE_PATTERN, 'coordinates are decimal strings in degrees with at most 6 places, such as "27.123456"'),
    Field(max_digits=9, decimal_places=6),
    WithJsonSchema({"type": "string", "pattern": COORDINATE_PATTERN, "examples": ["27.123456"],
                    "description": "Degrees (WGS 84) as a decimal string with at most 6 places"}),
]


class DocumentRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    kind: str
    target_type: str
    target_id: uuid.UUID | None
    household_id: uuid.UUID | None
    sha256: str
    size: int
    media_type: str
    filename: str
    width: int | None
    height: int | None
    has_thumbnail: bool
    taken_at: datetime | None = Field(description="EXIF time the photo was taken")
    has_location: bool = Field(description="The photo carries an EXIF location (shown to auditors only)")
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    flags: list[str] = Field(description="photo_other_day, photo_far_from_village: for the township to check")
    uploaded_by: uuid.UUID | None
    created_at: datetime


class ArchiveRequirementsWrite(FupinSchema):
    kinds: Annotated[list[DocumentKind], Field(max_length=20)]


class ArchiveRequirementsRead(FupinSchema):
    county: str
    kinds: list[str]


class VillageLocationWrite(FupinSchema):
    latitude: Annotated[Coordinate, Field(ge=-90, le=90)]
    longitude: Annotated[Coordinate, Field(ge=-180, le=180)]


class HouseholdArchiveRead(FupinSchema):
    household_id: uuid.UUID
    required: list[str]
    present: dict[str, int]
    missing: list[str]
    complete: bool


class VillageArchiveShare(FupinSchema):
    village: str
    households: int
    complete: int
    share: Decimal | None = Field(description="complete / households, 4 decimals (half up); null without households")


class IncompleteArchive(FupinSchema):
    household_id: uuid.UUID
    village: str
    household_no: str
    head_name: str
    missing: list[str]


class ArchiveReport(FupinSchema):
    area_code: str
    required: list[str]
    villages: list[VillageArchiveShare]
    incomplete: list[IncompleteArchive]


class FlaggedPhotoRead(FupinSchema):
    document_id: uuid.UUID
    visit_id: uuid.UUID
    household_id: uuid.UUID | None
    village: str
    visit_date: date
    taken_at: datetime | None
    flags: list[str]
