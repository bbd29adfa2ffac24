"""Who helps where: helping units, cadres, unit↔village assignments, work teams, and the per-county
pairing settings (cadre cap, visit rule) with effective dates."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth import service as auth_service
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.pairing.access import directory_visible, in_directory, load_cadre
from fupin.pairing.models import Cadre, HelpingUnit, PairingSetting, VillageAssignment, WorkTeam

ACTIVE = "active"


def snapshot(obj: Any, *fields: str) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}


def check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise RuleViolation("pairing.end_before_start", "end date is before start date", "结束日期早于开始日期")


def require_active(cadre: Cadre) -> None:
    if cadre.status != ACTIVE:
        raise RuleViolation(
            "pairing.cadre_inactive",
            f"cadre {cadre.name} is {cadre.status} and takes no households",
            f"帮扶干部 {cadre.name} 已{'退休' if cadre.status == 'retired' else '调离'},不再包户",
            extra={"cadre_id": str(cadre.id), "status": cadre.status},
        )


# -- helping units -----------------------------------------------------------------------------


async def create_unit(
    session: AsyncSession, *, principal: Principal, area_code: str, name: str, kind: str, level: str, contact: str
) -> HelpingUnit:
    if level_of(area_code) is not Level.county:
        raise RuleViolation("unit.area_not_county", "a helping unit belongs to a county", "帮扶单位须归属县级区划")
    if not visible(principal, area_code) or await session.get(Area, area_code) is None:
        raise not_found("area")
    unit = HelpingUnit(area_code=area_code, name=name, kind=kind, level=level, contact=contact, active=True)
    session.add(unit)
    await session.flush()
    await audit.record(session, principal, action="unit.create", entity="helping_unit", entity_id=unit.id,
                       area_code=area_code, after=snapshot(unit, "name", "kind", "level"))
    return unit


async def get_unit(session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID) -> HelpingUnit:
    unit = await session.get(HelpingUnit, unit_id)
    if unit is None or not directory_visible(principal, unit.area_code):
        raise not_found("helping_unit")
    return unit


async def _writable_unit(session: AsyncSession, principal: Principal, unit_id: uuid.UUID) -> HelpingUnit:
    unit = await get_unit(session, principal=principal, unit_id=unit_id)
    if not visible(principal, unit.area_code):
        raise not_found("helping_unit")
    return unit


async def update_unit(
    session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID, changes: dict[str, Any]
) -> HelpingUnit:
    unit = await _writable_unit(session, principal, unit_id)
    before = snapshot(unit, *changes)
    for key, value in changes.items():
        setattr(unit, key, value)
    await session.flush()
    await audit.record(session, principal, action="unit.update", entity="helping_unit", entity_id=unit.id,
                       area_code=unit.area_code, before=before, after=changes)
    return unit


async def list_units(
    session: AsyncSession, *, principal: Principal, kind: str | None, limit: int, after: uuid.UUID | None
) -> list[HelpingUnit]:
    stmt = select(HelpingUnit).where(in_directory(principal, HelpingUnit.area_code)).order_by(HelpingUnit.id)
    if kind:
        stmt = stmt.where(HelpingUnit.kind == kind)
    if after:
        stmt = stmt.where(HelpingUnit.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


# -- cadres ------------------------------------------------------------------------------------


async def create_cadre(
    session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID, name: str, level: str, contact: str,
    user_id: uuid.UUID | None,
) -> Cadre:
    unit = await _writable_unit(session, principal, unit_id)
    if user_id is not None:
        # Through fupin_user_auth: app_user rows are visible to user administrators only.
        user = await auth_service.load_auth(session, user_id)
        if user is None or user.area_code[:6] != unit.area_code[:6]:
            raise not_found("user")
        if user.role != Role.cadre.value:
            raise RuleViolation("cadre.user_not_cadre", "the linked user must have role cadre", "关联用户须为帮扶干部角色")
        if await session.scalar(select(Cadre.id).where(Cadre.user_id == user_id)) is not None:
            raise Conflict("cadre.user_taken", "that user is already linked to a cadre", "该用户已关联其他帮扶干部")
    cadre = Cadre(area_code=unit.area_code, unit_id=unit.id, name=name, level=level, contact=contact,
                  status=ACTIVE, user_id=user_id)
    session.add(cadre)
    await session.flush()
    await audit.record(session, principal, action="cadre.create", entity="cadre", entity_id=cadre.id,
                       area_code=cadre.area_code, after=snapshot(cadre, "name", "level", "unit_id", "user_id"))
    return cadre


async def get_cadre(session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID) -> Cadre:
    return await load_cadre(session, principal=principal, cadre_id=cadre_id)


async def update_cadre(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, changes: dict[str, Any]
) -> Cadre:
    """Status changes (retired/transferred) keep the pairings; `handover` moves them to successors."""
    cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id, lock=True)
    if not visible(principal, cadre.area_code):
        raise not_found("cadre")
    before = snapshot(cadre, *changes)
    for key, value in changes.items():
        setattr(cadre, key, value)
    await session.flush()
    await audit.record(session, principal, action="cadre.update", entity="cadre", entity_id=cadre.id,
                       area_code=cadre.area_code, before=before, after=changes)
    return cadre


async def list_cadres(
    session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID | None, status: str | None, limit: int,
    after: uuid.UUID | None,
) -> list[Cadre]:
    stmt = select(Cadre).where(in_directory(principal, Cadre.area_code)).order_by(Cadre.id)
    if principal.role is Role.cadre:
        stmt = stmt.where(Cadre.user_id == principal.user_id)
    if unit_id:
        stmt = stmt.where(Cadre.unit_id == unit_id)
    if status:
        stmt = stmt.where(Cadre.status == status)
    if after:
        stmt = stmt.where(Cadre.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


# -- village assignments and work teams --------------------------------------------------------


async def _village(session: AsyncSession, principal: Principal, code: str) -> Area:
    if level_of(code) is not Level.village:
        raise RuleViolation("pairing.not_a_village", "the area must be a village", "须为行政村")
    area = await session.get(Area, code)
    if area is None or not visible(principal, code):
        raise not_found("area")
    return area


async def create_village_assignment(
    session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID, village_code: str, lead: bool,
    start_date: date, end_date: date | None,
) -> VillageAssignment:
    check_dates(start_date, end_date)
    unit = await _writable_unit(session, principal, unit_id)
    await _village(session, principal, village_code)
    if county_of(village_code) != unit.area_code:
        raise RuleViolation("assignment.outside_county", "the village is outside the unit's county",
                            "该村不在帮扶单位所在县")
    row = VillageAssignment(area_code=village_code, unit_id=unit.id, lead=lead, start_date=start_date,
                            end_date=end_date)
    session.add(row)
    await session.flush()
    await audit.record(session, principal, action="village_assignment.create", entity="village_assignment",
                       entity_id=row.id, area_code=village_code,
                       after=snapshot(row, "unit_id", "lead", "start_date", "end_date"))
    return row


async def list_village_assignments(
    session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID | None, area: str | None, limit: int,
    after: uuid.UUID | None,
) -> list[VillageAssignment]:
    stmt = scoped(select(VillageAssignment), principal, VillageAssignment.area_code).order_by(VillageAssignment.id)
    if unit_id:
        stmt = stmt.where(VillageAssignment.unit_id == unit_id)
    if area:
        stmt = stmt.where(VillageAssignment.area_code == area)
    if after:
        stmt = stmt.where(VillageAssignment.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


async def get_village_assignment(
    session: AsyncSession, *, principal: Principal, assignment_id: uuid.UUID
) -> VillageAssignment:
    row = await session.scalar(
        scoped(select(VillageAssignment), principal, VillageAssignment.area_code).where(
            VillageAssignment.id == assignment_id
        )
    )
    if row is None:
        raise not_found("village_assignment")
    return row


async def create_work_team(
    session: AsyncSession, *, principal: Principal, village_code: str, unit_id: uuid.UUID | None,
    first_secretary_id: uuid.UUID | None, leader_id: uuid.UUID | None, member_ids: list[uuid.UUID],
    start_date: date, end_date: date | None,
) -> WorkTeam:
    check_dates(start_date, end_date)
    await _village(session, principal, village_code)
    if unit_id is not None:
        await get_unit(session, principal=principal, unit_id=unit_id)
    people = [c for c in (first_secretary_id, leader_id, *member_ids) if c is not None]
    for cadre_id in dict.fromkeys(people):
        cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id)
        if cadre.area_code != county_of(village_code):
            raise not_found("cadre")
        require_active(cadre)
    team = WorkTeam(area_code=village_code, unit_id=unit_id, first_secretary_id=first_secretary_id,
                    leader_id=leader_id, member_ids=list(dict.fromkeys(member_ids)), start_date=start_date,
                    end_date=end_date)
    session.add(team)
    await session.flush()
    await audit.record(session, principal, action="work_team.create", entity="work_team", entity_id=team.id,
                       area_code=village_code,
                       after=snapshot(team, "unit_id", "first_secretary_id", "leader_id", "member_ids",
                                       "start_date", "end_date"))
    return team


async def list_work_teams(
    session: AsyncSession, *, principal: Principal, area: str | None, limit: int, after: uuid.UUID | None
) -> list[WorkTeam]:
    stmt = scoped(select(WorkTeam), principal, WorkTeam.area_code).order_by(WorkTeam.id)
    if area:
        stmt = stmt.where(WorkTeam.area_code == area)
    if after:
        stmt = stmt.where(WorkTeam.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


async def get_work_team(session: AsyncSession, *, principal: Principal, team_id: uuid.UUID) -> WorkTeam:
    row = await session.scalar(scoped(select(WorkTeam), principal, WorkTeam.area_code).where(WorkTeam.id == team_id))
    if row is None:
        raise not_found("work_team")
    return row


# -- settings ----------------------------------------------------------------------------------


async def create_setting(
    session: AsyncSession, *, principal: Principal, county_code: str, effective_from: date,
    max_households_per_cadre: int | None, visits_required: int, visit_period: str,
) -> PairingSetting:
    if level_of(county_code) is not Level.county:
        raise RuleViolation("pairing.setting_not_county", "pairing settings are per county", "结对帮扶设置按县设定")
    if not visible(principal, county_code) or await session.get(Area, county_code) is None:
        raise not_found("area")
    exists = await session.scalar(select(PairingSetting.id).where(
        PairingSetting.area_code == county_code, PairingSetting.effective_from == effective_from))
    if exists is not None:
        raise Conflict("pairing.setting_exists", "a setting already starts on that date", "该日期已有设置")
    row = PairingSetting(area_code=county_code, effective_from=effective_from,
                         max_households_per_cadre=max_households_per_cadre, visits_required=visits_required,
                         visit_period=visit_period)
    session.add(row)
    await session.flush()
    await audit.record(session, principal, action="pairing_setting.create", entity="pairing_setting",
                       entity_id=row.id, area_code=county_code,
                       after=snapshot(row, "effective_from", "max_households_per_cadre", "visits_required",
                                       "visit_period"))
    return row


async def list_settings(session: AsyncSession, *, principal: Principal, county_code: str) -> list[PairingSetting]:
    if not directory_visible(principal, county_of(county_code)):
        raise not_found("area")
    stmt = select(PairingSetting).where(
        PairingSetting.area_code == county_of(county_code), in_directory(principal, PairingSetting.area_code)
    ).order_by(PairingSetting.effective_from)
    return list((await session.scalars(stmt)).all())


async def setting_on(session: AsyncSession, *, county_code: str, day: date) -> PairingSetting | None:
    """The setting in effect on `day` (latest `effective_from` ≤ day); None means the defaults."""
    return await session.scalar(
        select(PairingSetting)
        .where(PairingSetting.area_code == county_of(county_code), PairingSetting.effective_from <= day)
        .order_by(PairingSetting.effective_from.desc())
        .limit(1)
    )
