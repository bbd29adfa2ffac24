"""Base for API shapes (money and dates: `fupin.money`): Decimal travels as a string, datetimes are timezone-aware, pages use cursors."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class FupinSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", ser_json_timedelta="iso8601")


class Page(BaseModel, Generic[T]):
    """The one list envelope: a page of `items` and the cursor of the next page (null on the last one)."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `?cursor=` (same filters and sort) for the next page; "
                                                      "null on the last page")
    # Absent rather than null unless asked for, so lists without it keep their exact shape.
    total: int | None = Field(None, exclude_if=lambda v: v is None, description=(
        "Only with `?total=true`, on lists that offer it: how many items match the filters over all pages, "
        "counted with this page."), examples=[1234])

