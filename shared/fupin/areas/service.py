"""Area tree: counties, townships, villages, each with its registered rural population."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, contains, level_of, parent_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.errors import Conflict, RuleViolation, not_found


async def create_area(session: AsyncSession, *, principal: Principal, code: str, name: str, population: int) -> Area:
    """Create an area inside the caller's scope; the level follows from the code, the parent must exist."""
    level = level_of(code)
    if not principal.is_system and not contains(principal.area_code, code):
        raise not_found("area")
    if await session.get(Area, code) is not None:
        raise Conflict("area.exists", f"area {code} exists", f"区划 {code} 已存在")
    parent = parent_of(code)
    if parent is not None and level in (Level.township, Level.village) and await session.get(Area, parent) is None:
        raise RuleViolation("area.parent_missing", f"parent area {parent} must exist first", f"上级区划 {parent} 不存在")
    area = Area(code=code, name=name, level=level.value, parent_code=parent, population=population)
    session.add(area)
    await session.flush()
    await audit.record(
        session, principal, action="area.create", entity="area", entity_id=code, area_code=code,
        after={"name": name, "population": population},
    )
    return area


async def get_area(session: AsyncSession, *, principal: Principal, code: str) -> Area:
    area = await session.get(Area, code)
    if area is None or not visible(principal, area.code):
        raise not_found("area")
    return area


async def update_area(
    session: AsyncSession, *, principal: Principal, code: str, name: str | None, population: int | None
) -> Area:
    area = await get_area(session, principal=principal, code=code)
    before = {"name": area.name, "population": area.population}
    if name is not None:
        area.name = name
    if population is not None:
        area.population = population
    await session.flush()
    await audit.record(
        session, principal, action="area.update", entity="area", entity_id=code, area_code=code,
        before=before, after={"name": area.name, "population": area.population},
    )
    return area


async def list_areas(
    session: AsyncSession, *, principal: Principal, parent: str | None, level: str | None, limit: int, after: str | None
) -> list[Area]:
    stmt = scoped(select(Area), principal, Area.code).order_by(Area.code).limit(limit)
    if parent:
        stmt = stmt.where(Area.parent_code == parent)
    if level:
        stmt = stmt.where(Area.level == level)
    if after:
        stmt = stmt.where(Area.code > after)
    return list((await session.scalars(stmt)).all())
