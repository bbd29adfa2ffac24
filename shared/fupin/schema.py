"""Base for API shapes: Decimal travels as a string, datetimes are timezone-aware, pages use cursors."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

T = TypeVar("T")


class FupinSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", ser_json_timedelta="iso8601")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def reject_float(value: Any) -> Any:
    """Money and rates arrive as decimal strings (or integers): a JSON float cannot be exact."""
    if isinstance(value, float | bool):
        raise ValueError('amounts and rates are decimal strings such as "20000.00", never JSON floats')
    return value


NoFloat = BeforeValidator(reject_float)
