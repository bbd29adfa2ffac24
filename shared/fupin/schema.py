"""Base for API shapes: Decimal travels as a string, datetimes are timezone-aware, pages use cursors."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class FupinSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", ser_json_timedelta="iso8601")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
