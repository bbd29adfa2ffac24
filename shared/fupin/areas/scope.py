"""The one place area filters are written. Every read of area-owned rows goes through `scoped`."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select

from fupin.areas.codes import prefix_of
from fupin.auth.principal import Principal

S = TypeVar("S", bound=Select[Any])


def scope_pattern(principal: Principal) -> str:
    """LIKE pattern for RLS (`fupin.scope`): the area prefix plus '%', or '%' for the system actor."""
    if principal.is_system:
        return "%"
    return prefix_of(principal.area_code) + "%"


def in_scope(principal: Principal, column: Any) -> ColumnElement[bool]:
    if principal.is_system:
        from sqlalchemy import true

        return true()
    return column.like(prefix_of(principal.area_code) + "%")


def scoped(stmt: S, principal: Principal, column: Any) -> S:
    return stmt.where(in_scope(principal, column))


def visible(principal: Principal, code: str) -> bool:
    return principal.is_system or code.startswith(prefix_of(principal.area_code))
