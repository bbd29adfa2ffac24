"""Who may see which pairing rows, on top of the area rule.

- Units, cadres and county settings form a county-wide directory: readable from the county and from
  every township and village inside it (the RLS policy in migration 0060 says the same).
- A user with role cadre sees only the households they are actively paired with, and only the
  pairings, visits and plans of those households. Anything else answers 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.scope import in_scope, scoped, visible
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import not_found
from fupin.households.models import Household
from fupin.pairing.models import Cadre, Pairing

EXITED = ("exited", "removed")  # a household in these statuses no longer needs a cadre



def directory_visible(principal: Principal, code: str) -> bool:
    """A county-directory row (unit, cadre, setting) is visible inside its county and above it."""
    if visible(principal, code):
        return True
    return level_of(code) is Level.county and principal.area_code[:6] == code[:6]


def in_directory(principal: Principal, column: Any) -> ColumnElement[bool]:
    if principal.is_system:
        return true()
    return or_(in_scope(principal, column), column == county_of(principal.area_code))


def is_cadre(principal: Principal) -> bool:
    return principal.role is Role.cadre


def own_households(principal: Principal) -> Select[Any]:
    """Ids of the households the calling cadre is actively paired with."""
    return (
        select(Pairing.household_id)
        .join(Cadre, Cadre.id == Pairing.cadre_id)
        .where(Cadre.user_id == principal.user_id, Pairing.end_date.is_(None))
    )


def household_filter(principal: Principal, column: Any) -> ColumnElement[bool]:
    """Extra filter for rows keyed by household id: a cadre's own households, everyone else all."""
    if not is_cadre(principal):
        return true()
    if principal.user_id is None:
        return false()
    return column.in_(own_households(principal))


async def caller_cadre(session: AsyncSession, principal: Principal) -> Cadre | None:
    if not is_cadre(principal) or principal.user_id is None:
        return None
    return await session.scalar(select(Cadre).where(Cadre.user_id == principal.user_id))


async def load_household(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, lock: bool = False
) -> Household:
    stmt = scoped(select(Household), principal, Household.area_code).where(
        Household.id == household_id, household_filter(principal, Household.id)
    )
    if lock:
        stmt = stmt.with_for_update()
    household = await session.scalar(stmt)
    if household is None:
        raise not_found("household")
    return household


async def load_cadre(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, lock: bool = False
) -> Cadre:
    stmt = select(Cadre).where(Cadre.id == cadre_id, in_directory(principal, Cadre.area_code))
    if lock:
        stmt = stmt.with_for_update()
    cadre = await session.scalar(stmt)
    if cadre is None:
        raise not_found("cadre")
    if is_cadre(principal) and cadre.user_id != principal.user_id:
        raise not_found("cadre")
    return cadre
