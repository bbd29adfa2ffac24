"""Helping units, cadres, village assignments, work teams, pairing settings and pairings.

Rules (each refused with a stable code):
- 不脱贫不脱钩: a household that has not exited is never left without an active cadre; ending its
  last pairing needs a successor in the same request (`pairing.would_orphan_household`).
- Retired or transferred cadres take no households (`pairing.cadre_inactive`) and hand theirs over in
  one atomic call (`handover`).
- An optional per-county cap on a cadre's active households (`pairing.cadre_at_capacity`).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.models import User
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households.models import Household
from fupin.pairing.access import (
    EXITED,
    county_of,
    directory_visible,
    household_filter,
    in_directory,
    load_cadre,
    load_household,
)
from fupin.pairing.models import Cadre, HelpingUnit, Pairing, PairingSetting, VillageAssignment, WorkTeam

ACTIVE = "active"


def _snapshot(obj: Any, *fields: str) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}


def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise RuleViolation("pairing.end_before_start", "end date is before start date", "结束日期早于开始日期")


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
                       area_code=area_code, after=_snapshot(unit, "name", "kind", "level"))
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
    before = _snapshot(unit, *changes)
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
        user = await session.get(User, user_id)
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
                       area_code=cadre.area_code, after=_snapshot(cadre, "name", "level", "unit_id", "user_id"))
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
    before = _snapshot(cadre, *changes)
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
    _check_dates(start_date, end_date)
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
                       after=_snapshot(row, "unit_id", "lead", "start_date", "end_date"))
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
    _check_dates(start_date, end_date)
    await _village(session, principal, village_code)
    if unit_id is not None:
        await get_unit(session, principal=principal, unit_id=unit_id)
    people = [c for c in (first_secretary_id, leader_id, *member_ids) if c is not None]
    for cadre_id in dict.fromkeys(people):
        cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id)
        if cadre.area_code != county_of(village_code):
            raise not_found("cadre")
        _require_active(cadre)
    team = WorkTeam(area_code=village_code, unit_id=unit_id, first_secretary_id=first_secretary_id,
                    leader_id=leader_id, member_ids=list(dict.fromkeys(member_ids)), start_date=start_date,
                    end_date=end_date)
    session.add(team)
    await session.flush()
    await audit.record(session, principal, action="work_team.create", entity="work_team", entity_id=team.id,
                       area_code=village_code,
                       after=_snapshot(team, "unit_id", "first_secretary_id", "leader_id", "member_ids",
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
                       after=_snapshot(row, "effective_from", "max_households_per_cadre", "visits_required",
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


# -- pairings ----------------------------------------------------------------------------------


def _require_active(cadre: Cadre) -> None:
    if cadre.status != ACTIVE:
        raise RuleViolation(
            "pairing.cadre_inactive",
            f"cadre {cadre.name} is {cadre.status} and takes no households",
            f"帮扶干部 {cadre.name} 已{'退休' if cadre.status == 'retired' else '调离'},不再包户",
            extra={"cadre_id": str(cadre.id), "status": cadre.status},
        )


async def _pair(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, household: Household, start_date: date
) -> Pairing:
    """Every rule for putting a household with a cadre; the cadre row is locked so caps hold under concurrency."""
    cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id, lock=True)
    if cadre.area_code != county_of(household.area_code):
        raise not_found("cadre")
    _require_active(cadre)
    if household.status in EXITED:
        raise RuleViolation("pairing.household_exited", "the household has exited and takes no new cadre",
                            "该户已脱贫或已清退,不再新增结对")
    held = await session.scalar(select(Pairing.id).where(
        Pairing.cadre_id == cadre.id, Pairing.household_id == household.id, Pairing.end_date.is_(None)))
    if held is not None:
        raise Conflict("pairing.already_paired", "the cadre is already paired with this household",
                       "该干部已与该户结对")
    setting = await setting_on(session, county_code=household.area_code, day=start_date)
    if setting is not None and setting.max_households_per_cadre is not None:
        active = int(await session.scalar(select(func.count()).select_from(Pairing).where(
            Pairing.cadre_id == cadre.id, Pairing.end_date.is_(None))) or 0)
        if active >= setting.max_households_per_cadre:
            raise RuleViolation(
                "pairing.cadre_at_capacity",
                f"cadre {cadre.name} already has {active} households (cap {setting.max_households_per_cadre})",
                f"帮扶干部 {cadre.name} 已包 {active} 户,达到上限 {setting.max_households_per_cadre} 户",
                extra={"cadre_id": str(cadre.id), "active": active, "cap": setting.max_households_per_cadre},
            )
    pairing = Pairing(area_code=household.area_code, cadre_id=cadre.id, household_id=household.id,
                      start_date=start_date)
    session.add(pairing)
    await session.flush()
    await audit.record(session, principal, action="pairing.create", entity="pairing", entity_id=pairing.id,
                       area_code=pairing.area_code,
                       after=_snapshot(pairing, "cadre_id", "household_id", "start_date"))
    return pairing


async def create_pairing(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, household_id: uuid.UUID, start_date: date
) -> Pairing:
    household = await load_household(session, principal=principal, household_id=household_id, lock=True)
    return await _pair(session, principal=principal, cadre_id=cadre_id, household=household, start_date=start_date)


async def get_pairing(session: AsyncSession, *, principal: Principal, pairing_id: uuid.UUID) -> Pairing:
    row = await session.scalar(
        scoped(select(Pairing), principal, Pairing.area_code).where(
            Pairing.id == pairing_id, household_filter(principal, Pairing.household_id)
        )
    )
    if row is None:
        raise not_found("pairing")
    return row


async def list_pairings(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID | None, household_id: uuid.UUID | None,
    active: bool | None, limit: int, after: uuid.UUID | None,
) -> list[Pairing]:
    stmt = scoped(select(Pairing), principal, Pairing.area_code).where(
        household_filter(principal, Pairing.household_id)
    ).order_by(Pairing.id)
    if cadre_id:
        stmt = stmt.where(Pairing.cadre_id == cadre_id)
    if household_id:
        stmt = stmt.where(Pairing.household_id == household_id)
    if active is not None:
        stmt = stmt.where(Pairing.end_date.is_(None) if active else Pairing.end_date.is_not(None))
    if after:
        stmt = stmt.where(Pairing.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


async def _end(
    session: AsyncSession, *, principal: Principal, pairing: Pairing, household: Household, end_date: date,
    reason: str, successor_cadre_id: uuid.UUID | None,
) -> Pairing | None:
    if pairing.end_date is not None:
        raise Conflict("pairing.already_ended", "the pairing has already ended", "该结对已结束")
    _check_dates(pairing.start_date, end_date)
    successor: Pairing | None = None
    if successor_cadre_id is not None:
        if successor_cadre_id == pairing.cadre_id:
            raise RuleViolation("pairing.successor_is_same_cadre", "the successor must be another cadre",
                                "接续帮扶干部不能是原干部")
        successor = await _pair(session, principal=principal, cadre_id=successor_cadre_id, household=household,
                                start_date=end_date)
    elif household.status not in EXITED:
        others = await session.scalar(
            select(func.count()).select_from(Pairing).join(Cadre, Cadre.id == Pairing.cadre_id).where(
                Pairing.household_id == household.id, Pairing.id != pairing.id, Pairing.end_date.is_(None),
                Cadre.status == ACTIVE,
            )
        )
        if not others:
            raise RuleViolation(
                "pairing.would_orphan_household",
                "the household has not exited: name a successor cadre in the same request (不脱贫不脱钩)",
                "贫困户未脱贫,帮扶干部不脱钩:结束结对须同时指定接续帮扶干部",
                extra={"household_id": str(household.id)},
            )
    before = _snapshot(pairing, "end_date", "end_reason", "successor_id")
    pairing.end_date = end_date
    pairing.end_reason = reason
    pairing.successor_id = successor.id if successor else None
    await session.flush()
    await audit.record(session, principal, action="pairing.end", entity="pairing", entity_id=pairing.id,
                       area_code=pairing.area_code, before=before,
                       after=_snapshot(pairing, "end_date", "end_reason", "successor_id"))
    return successor


async def end_pairing(
    session: AsyncSession, *, principal: Principal, pairing_id: uuid.UUID, end_date: date, reason: str,
    successor_cadre_id: uuid.UUID | None,
) -> tuple[Pairing, Pairing | None]:
    pairing = await get_pairing(session, principal=principal, pairing_id=pairing_id)
    # Lock the household first: two concurrent ends of its last two pairings cannot both pass the check.
    household = await load_household(session, principal=principal, household_id=pairing.household_id, lock=True)
    await session.refresh(pairing)
    successor = await _end(session, principal=principal, pairing=pairing, household=household, end_date=end_date,
                           reason=reason, successor_cadre_id=successor_cadre_id)
    return pairing, successor


async def handover(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, handover_date: date, reason: str,
    items: list[tuple[uuid.UUID, uuid.UUID]],
) -> tuple[int, list[Pairing]]:
    """Hand every active household of a retired/transferred cadre to named successors, all or nothing.

    `items` is (household_id, successor_cadre_id). Every not-exited household must be named; exited
    ones may be named or are simply released. Runs in a savepoint, so a refusal on any item leaves
    nothing changed even for a caller that catches the error.
    """
    async with session.begin_nested():
        cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id, lock=True)
        if not visible(principal, cadre.area_code):
            raise not_found("cadre")
        if cadre.status == ACTIVE:
            raise RuleViolation("pairing.cadre_still_active",
                                "handover is for retired or transferred cadres; end single pairings instead",
                                "仅退休或调离的帮扶干部可整体移交")
        named = dict(items)
        if len(named) != len(items):
            raise RuleViolation("pairing.handover_duplicate", "a household is named twice", "同一户重复出现")
        rows = (await session.execute(
            select(Pairing, Household).join(Household, Household.id == Pairing.household_id)
            .where(Pairing.cadre_id == cadre.id, Pairing.end_date.is_(None))
            .order_by(Pairing.id)
            .with_for_update()
        )).all()
        held = {p.household_id for p, _ in rows}
        unknown = sorted(str(h) for h in named if h not in held)
        if unknown:
            raise RuleViolation("pairing.handover_unknown_household",
                                "some named households are not held by this cadre", "部分户不在该干部名下",
                                extra={"household_ids": unknown})
        missing = sorted(str(h.id) for _, h in rows if h.status not in EXITED and h.id not in named)
        if missing:
            raise RuleViolation("pairing.would_orphan_household",
                                "every household that has not exited needs a successor cadre",
                                "所有未脱贫户都须指定接续帮扶干部", extra={"household_ids": missing})
        created: list[Pairing] = []
        for pairing, household in rows:
            successor = await _end(session, principal=principal, pairing=pairing, household=household,
                                   end_date=handover_date, reason=reason,
                                   successor_cadre_id=named.get(household.id))
            if successor is not None:
                created.append(successor)
        await audit.record(session, principal, action="cadre.handover", entity="cadre", entity_id=cadre.id,
                           area_code=cadre.area_code,
                           after={"ended": len(rows), "successors": {str(k): str(v) for k, v in named.items()}})
    return len(rows), created
