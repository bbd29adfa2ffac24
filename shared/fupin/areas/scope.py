"""The one place area filters are written. Every read of area-owned rows goes through `scoped`
(SQLAlchemy statements) or `within_sql` + `bounds` (text SQL)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, true

from fupin.areas.codes import prefix_of
from fupin.auth.principal import Principal

S = TypeVar("S", bound=Select[Any])
# Codes are digits only, and ':' sorts right after '9': [prefix, prefix + ':') is every code under it.
_AFTER_DIGITS = ":"
_PATTERN = re.compile(r"^[0-9]{0,12}%$")


def scope_pattern(principal: Principal) -> str:
    """LIKE pattern for RLS (`fupin.scope`): the area prefix plus '%', or '%' for the system actor."""
    if principal.is_system:
        return "%"
    return prefix_of(principal.area_code) + "%"


def checked_pattern(pattern: str) -> str:
    """`pattern` after proving it is digits and one trailing '%': the only shape that may be spliced
    into `SET LOCAL fupin.scope = '…'` (SET takes no bind parameters)."""
    if not _PATTERN.match(pattern):
        raise ValueError(f"not an area scope pattern: {pattern!r}")
    return pattern


def bounds(area_code: str | None) -> tuple[str, str]:
    """[low, high) of the codes inside `area_code`; None means every code."""
    prefix = prefix_of(area_code) if area_code is not None else ""
    return prefix, prefix + _AFTER_DIGITS


def code_range(area_code: str) -> tuple[str, str]:
    """[low, high) of the codes inside the area; text SQL binds them as `col >= :low AND col < :high`."""
    return bounds(area_code)


def principal_bounds(principal: Principal) -> tuple[str, str]:
    return bounds(None if principal.is_system else principal.area_code)


def within(column: Any, area_code: str) -> ColumnElement[bool]:
    """`column` lies inside the area: a range on the level prefix, not LIKE, because LIKE 'p%' cannot
    use a plain btree index under a non-C collation (C.UTF-8 included) and scans the table."""
    low, high = bounds(area_code)
    return and_(column >= low, column < high)


def within_sql(column: str, name: str) -> str:
    """The same range for text SQL: binds `:{name}_lo` and `:{name}_hi` (fill them with `bind`)."""
    return f"({column} >= :{name}_lo AND {column} < :{name}_hi)"


def bind(name: str, area_code: str | None) -> dict[str, str]:
    """Parameters for `within_sql(column, name)`."""
    low, high = bounds(area_code)
    return {f"{name}_lo": low, f"{name}_hi": high}


def in_scope(principal: Principal, column: Any) -> ColumnElement[bool]:
    if principal.is_system:
        return true()
    return within(column, principal.area_code)


def scoped(stmt: S, principal: Principal, column: Any) -> S:
    return stmt.where(in_scope(principal, column))


def visible(principal: Principal, code: str) -> bool:
    return principal.is_system or code.startswith(prefix_of(principal.area_code))
