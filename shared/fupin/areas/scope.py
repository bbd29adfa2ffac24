"""The one place area filters are written. Every read of area-owned rows goes through `scoped`."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, true

from fupin.areas.codes import prefix_of
from fupin.auth.principal import Principal

S = TypeVar("S", bound=Select[Any])


def scope_pattern(principal: Principal) -> str:
    """LIKE pattern for RLS (`fupin.scope`): the area prefix plus '%', or '%' for the system actor."""
    if principal.is_system:
        return "%"
    return prefix_of(principal.area_code) + "%"


def code_range(area_code: str) -> tuple[str, str]:
    """[low, high) of the codes inside the area; text SQL binds them as `col >= :low AND col < :high`.
    Codes are digits only, and ':' sorts right after '9'."""
    prefix = prefix_of(area_code)
    return prefix, prefix + ":"


def within(column: Any, area_code: str) -> ColumnElement[bool]:
    """`column` lies inside the area: a range on the level prefix, not LIKE, because LIKE 'p%' cannot
    use a plain btree index under a non-C collation (C.UTF-8 included) and scans the table."""
    low, high = code_range(area_code)
    return and_(column >= low, column < high)


def in_scope(principal: Principal, column: Any) -> ColumnElement[bool]:
    if principal.is_system:
        return true()
    return within(column, principal.area_code)


def scoped(stmt: S, principal: Principal, column: Any) -> S:
    return stmt.where(in_scope(principal, column))


def visible(principal: Principal, code: str) -> bool:
    return principal.is_system or code.startswith(prefix_of(principal.area_code))
