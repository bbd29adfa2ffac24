from __future__ import annotations

from datetime import datetime

from pydantic import Field

from fupin.schema import FupinSchema


class AreaCreate(FupinSchema):
    code: str = Field(pattern=r"^\d{12}$", description="12-digit statistical division code")
    name: str = Field(min_length=1, max_length=100)
    population: int = Field(0, ge=0, le=100_000_000, description="Registered rural population (户籍人口)")


class AreaUpdate(FupinSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    population: int | None = Field(None, ge=0, le=100_000_000)


class AreaRead(FupinSchema):
    code: str
    name: str
    level: str
    parent_code: str | None
    population: int
    created_at: datetime
