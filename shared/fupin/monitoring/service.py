"""Monitored households and warnings: entering a household outside the registry, and raising a risk from
the household's own report (through the village committee) or a paired cadre's visit. A warning opens a
monitoring cycle (`warned`, with its decision deadline on working days), or is added to the cycle that is
open; a household eliminated or dismissed before is monitored again in a new cycle, its history kept.

Departmental screening raises the same warnings set-based (`fupin.monitoring.screening`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible, within
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import Conflict, Forbidden, RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.models import Household, Member
from fupin.households.service import id_owners
from fupin.loans import workdays
from fupin.monitoring import access
from fupin.monitoring.models import MonitoredHousehold, MonitoredPerson, MonitoringStep, MonitoringWarning
from fupin.monitoring.policy import rules_on
from fupin.monitoring.rules import CLOSED, OPEN_STEP, MonitoringKind, RiskCause, Status, WarningSource
from fupin.monitoring.schemas import MonitoredHouseholdCreate, WarningCreate
from fupin.pairing import visits as pairing_visits
from fupin.pairing.access import load_cadre, load_household
from fupin.pairing.models import Pairing, Visit
from fupin.pairing.structure import require_active, setting_on

EXITED = "exited"  # the registry status of a household that left poverty: the one the programme watches


def snapshot(mh: MonitoredHousehold) -> dict[str, Any]:
    return {"status": mh.status, "cycle": mh.cycle, "kind": mh.kind, "cause": mh.cause,
            "opened_on": mh.opened_on, "decision_due_on": mh.decision_due_on, "household_id": mh.household_id}


async def decision_due(session: AsyncSession, *, area_code: str, raised_on: date) -> date:
    """The county's decision deadline for a warning raised on `raised_on`: working days, 调休 included."""
    resolved = await rules_on(session, area_code=area_code, on=raised_on)
    return await workdays.add_working_days(session, raised_on, resolved.rules.decision_days)


async def check_cadre(session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, area_code: str,
                      on: date) -> None:
    """The pairing domain's rules for a responsible cadre: in the household's county, active, and under the
    county's cap on households per cadre (pairings and monitored households counted together)."""
    cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id)
    if cadre.area_code != county_of(area_code):
        raise not_found("cadre")
    require_active(cadre)
    setting = await setting_on(session, county_code=area_code, day=on)
    if setting is None or setting.max_households_per_cadre is None:
        return
    # A township user may not lock the county's cadre row (row-level security on FOR UPDATE), so two
    # concurrent assignments of one capped cadre queue on a lock of the cadre's id instead.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"cadre:{cadre.id}"})
    paired = await session.scalar(select(func.count()).select_from(Pairing).where(
        Pairing.cadre_id == cadre.id, Pairing.end_date.is_(None)))
    monitored = await session.scalar(select(func.count()).select_from(MonitoredHousehold).where(
        MonitoredHousehold.cadre_id == cadre.id, MonitoredHousehold.status.not_in([s.value for s in CLOSED])))
    held = int(paired or 0) + int(monitored or 0)
    if held >= setting.max_households_per_cadre:
        raise RuleViolation(
            "pairing.cadre_at_capacity",
            f"cadre {cadre.name} already has {held} households (cap {setting.max_households_per_cadre})",
            f"帮扶干部 {cadre.name} 已包 {held} 户,达到上限 {setting.max_households_per_cadre} 户",
            extra={"cadre_id": str(cadre.id), "active": held, "cap": setting.max_households_per_cadre},
        )


async def assign_cadre(session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID,
                       cadre_id: uuid.UUID, on: date) -> MonitoredHousehold:
    """Name the responsible cadre of a monitored household (「明确专人结对帮扶」) when no active pairing
    already gives it one: a household outside the registry, or an exited one the pairing domain no longer
    pairs. Later warnings are routed to this cadre."""
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id, lock=True)
    if on > business_date():
        raise RuleViolation("monitoring.future_date", "the date cannot be in the future", "日期不能晚于今天")
    current = await access.responsible_cadre(session, mh)
    if current is not None and current != mh.cadre_id:
        raise Conflict("monitoring.already_paired", "the household has an active pairing; change it in pairing",
                       "该户已有结对帮扶干部,请在结对帮扶中调整", extra={"cadre_id": str(current)})
    if cadre_id == mh.cadre_id:
        return mh
    await check_cadre(session, principal=principal, cadre_id=cadre_id, area_code=mh.area_code, on=on)
    before, mh.cadre_id = mh.cadre_id, cadre_id
    await session.flush()
    await audit.record(session, principal, action="monitoring.cadre.assign", entity="monitored_household",
                       entity_id=mh.id, area_code=mh.area_code, before={"cadre_id": before},
                       after={"cadre_id": cadre_id, "on": on})
    return mh


# --- entering a household outside the registry ----------------------------------------------------


async def _village(session: AsyncSession, principal: Principal, code: str) -> None:
    if level_of(code) is not Level.village:
        raise RuleViolation("monitoring.not_a_village", "a household belongs to a village", "农户须属于行政村")
    if not visible(principal, code) or await session.get(Area, code) is None:
        raise not_found("area")


def _people(body: MonitoredHouseholdCreate, today: date) -> list[tuple[str, household_rules.IdInfo, str]]:
    heads = [p for p in body.persons if p.relation == household_rules.HEAD]
    if len(heads) != 1:
        raise RuleViolation("monitoring.head_count", "a household needs exactly one 户主", "须有且仅有一名户主")
    people: list[tuple[str, household_rules.IdInfo, str]] = [
        (p.name, household_rules.parse_id(p.id_number, today=today), p.relation) for p in body.persons]
    numbers = [info.number for _, info, _ in people]
    if len(set(numbers)) != len(numbers):
        raise RuleViolation("member.id_duplicate", "the same ID number appears twice", "身份证号码重复")
    return people


async def enter_household(
    session: AsyncSession, *, principal: Principal, body: MonitoredHouseholdCreate
) -> MonitoredHousehold:
    """Enter a household outside the registry (边缘易致贫户 or 突发严重困难户) with the risk that brings it
    in. A person already in the registry is monitored through their registry household instead."""
    today = business_date()
    if body.reported_on > today:
        raise RuleViolation("monitoring.future_date", "the report cannot be dated in the future", "报告日期不能晚于今天")
    await _village(session, principal, body.area_code)
    people = _people(body, today)
    owners = await id_owners(session, [info.number for _, info, _ in people])
    if owners:
        number = next(iter(owners))
        raise Conflict("monitoring.person_in_registry",
                       "a person is in the registry: report the risk for their registry household",
                       "该成员已在建档立卡系统中,请对其在册农户报告风险",
                       extra={"id_number": household_rules.mask_id(number)})
    if body.cadre_id is not None:
        await check_cadre(session, principal=principal, cadre_id=body.cadre_id, area_code=body.area_code,
                          on=body.reported_on)
    mh = MonitoredHousehold(
        id=uuid.uuid4(), area_code=body.area_code, household_id=None,
        head_name=next(n for n, _, r in people if r == household_rules.HEAD), address=body.address,
        kind=body.kind.value, cause=body.cause.value, status=Status.warned.value, cycle=1, persons=len(people),
        income_per_capita=body.income_per_capita, opened_on=body.reported_on,
        decision_due_on=await decision_due(session, area_code=body.area_code, raised_on=body.reported_on),
        cadre_id=body.cadre_id, created_by=principal.username,
    )
    session.add(mh)
    try:
        async with session.begin_nested():
            await session.flush()
            session.add_all([MonitoredPerson(monitored_household_id=mh.id, area_code=mh.area_code, name=name,
                                             id_number=info.number, sex=info.sex, birth_date=info.birth_date,
                                             relation=relation, active=True) for name, info, relation in people])
            await session.flush()
    except IntegrityError:
        raise Conflict("monitoring.person_already_monitored", "a person already belongs to a monitored household",
                       "该成员已在其他监测户中") from None
    await _record_opening(session, principal, mh, previous=None)
    await _warning(session, principal, mh, source=WarningSource.self_report, cause=body.cause, detail=body.detail,
                   amount=body.amount, raised_on=body.reported_on, visit_id=None, opened=True)
    await audit.record(session, principal, action="monitoring.household.enter", entity="monitored_household",
                       entity_id=mh.id, area_code=mh.area_code, after={**snapshot(mh), "persons": mh.persons})
    return mh


# --- warnings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    monitored: MonitoredHousehold | None
    registry: Household | None


async def _subject(session: AsyncSession, principal: Principal, body: WarningCreate) -> Subject:
    if body.monitored_household_id is not None:
        mh = await access.load(session, principal=principal, monitored_household_id=body.monitored_household_id,
                               lock=True)
        return Subject(mh, None)
    assert body.household_id is not None
    household = await load_household(session, principal=principal, household_id=body.household_id, lock=True)
    if household.status != EXITED:
        raise RuleViolation(
            "monitoring.household_not_exited",
            f"a registry household is monitored once it has exited (status is {household.status})",
            f"在册农户脱贫后方纳入防返贫监测(当前状态:{household.status})",
            status=409, extra={"status": household.status},
        )
    existing = await session.scalar(select(MonitoredHousehold).where(
        MonitoredHousehold.household_id == household.id).with_for_update())
    return Subject(existing, household)


async def _check_source(session: AsyncSession, principal: Principal, body: WarningCreate,
                        household_id: uuid.UUID | None) -> None:
    """A cadre reports what they found on a visit; the household's own report comes through the village.
    A visit finding about a registry household names its pairing visit, of that household, on or before
    the warning date."""
    if principal.role is Role.cadre and body.source is not WarningSource.cadre_visit:
        raise Forbidden("monitoring.wrong_source", "a cadre reports a risk found on a visit (cadre_visit)",
                        "帮扶干部应以走访发现报告风险")
    if body.visit_id is None:
        if body.source is WarningSource.cadre_visit and household_id is not None:
            raise RuleViolation("monitoring.visit_required", "a visit finding names its visit", "走访发现须关联走访记录")
        return
    visit: Visit = await pairing_visits.get_visit(session, principal=principal, visit_id=body.visit_id)
    if visit.household_id != household_id:
        raise RuleViolation("monitoring.visit_mismatch", "the visit is not of this household", "该走访记录不属于此户")
    if visit.visit_date > body.raised_on:
        raise RuleViolation("monitoring.visit_after_warning", "the warning precedes the visit", "预警日期早于走访日期")


async def raise_warning(session: AsyncSession, *, principal: Principal, body: WarningCreate) -> MonitoringWarning:
    """Record a risk: it opens a monitoring cycle, or is added to the household's open one."""
    if body.raised_on > business_date():
        raise RuleViolation("monitoring.future_date", "the warning cannot be dated in the future", "预警日期不能晚于今天")
    subject = await _subject(session, principal, body)
    registry_id = subject.registry.id if subject.registry else (subject.monitored.household_id
                                                                 if subject.monitored else None)
    await _check_source(session, principal, body, registry_id)
    mh: MonitoredHousehold | None = subject.monitored
    opened = False
    if mh is None:
        assert subject.registry is not None
        mh = await _open_registry_household(session, principal, subject.registry, body)
        opened = True
    elif mh.status in CLOSED:
        await _reopen(session, principal, mh, cause=body.cause, raised_on=body.raised_on)
        opened = True
    warning = await _warning(session, principal, mh, source=body.source, cause=body.cause, detail=body.detail,
                             amount=body.amount, raised_on=body.raised_on, visit_id=body.visit_id, opened=opened)
    await audit.record(session, principal, action="monitoring.warning.raise", entity="monitoring_warning",
                       entity_id=warning.id, area_code=mh.area_code,
                       after={"source": body.source, "cause": body.cause, "opened_cycle": opened, "cycle": mh.cycle,
                              "monitored_household_id": mh.id, "cadre_id": warning.cadre_id})
    return warning


async def _open_registry_household(session: AsyncSession, principal: Principal, household: Household,
                                   body: WarningCreate) -> MonitoredHousehold:
    persons = int(await session.scalar(select(func.count()).select_from(Member).where(
        Member.household_id == household.id, Member.active)) or 0)
    mh = MonitoredHousehold(
        id=uuid.uuid4(), area_code=household.area_code, household_id=household.id, head_name=household.head_name,
        address=household.address, kind=(body.kind or MonitoringKind.unstable_exited).value, cause=body.cause.value,
        status=Status.warned.value, cycle=1, persons=max(persons, 1), income_per_capita=household.income_per_capita,
        opened_on=body.raised_on,
        decision_due_on=await decision_due(session, area_code=household.area_code, raised_on=body.raised_on),
        created_by=principal.username,
    )
    session.add(mh)
    await session.flush()
    await _record_opening(session, principal, mh, previous=None)
    return mh


async def _reopen(session: AsyncSession, principal: Principal, mh: MonitoredHousehold, *, cause: RiskCause,
                  raised_on: date) -> None:
    """A household eliminated or dismissed before is monitored again: a new cycle; its history stays."""
    previous = mh.status
    mh.cycle += 1
    mh.status = Status.warned.value
    mh.cause = cause.value
    mh.opened_on = raised_on
    mh.decision_due_on = await decision_due(session, area_code=mh.area_code, raised_on=raised_on)
    mh.decided_on = mh.measure_due_on = mh.stable_since = mh.closed_on = None
    await session.flush()
    await _record_opening(session, principal, mh, previous=previous)


async def _record_opening(session: AsyncSession, principal: Principal, mh: MonitoredHousehold,
                          previous: str | None) -> None:
    session.add(MonitoringStep(
        area_code=mh.area_code, monitored_household_id=mh.id, cycle=mh.cycle, step=OPEN_STEP,
        from_status=previous or "none", to_status=mh.status, role=principal.role.value, actor=principal.username,
        on_date=mh.opened_on, opinion="", details={"decision_due_on": mh.decision_due_on.isoformat()},
    ))
    await session.flush()


async def _warning(
    session: AsyncSession, principal: Principal, mh: MonitoredHousehold, *, source: WarningSource, cause: RiskCause,
    detail: str, amount: Decimal | None, raised_on: date, visit_id: uuid.UUID | None, opened: bool,
) -> MonitoringWarning:
    warning = MonitoringWarning(
        id=uuid.uuid4(), area_code=mh.area_code, monitored_household_id=mh.id, cycle=mh.cycle, source=source.value,
        visit_id=visit_id, cause=cause.value, amount=amount, detail=detail, raised_on=raised_on,
        cadre_id=await access.responsible_cadre(session, mh), opened_cycle=opened, created_by=principal.username,
    )
    session.add(warning)
    await session.flush()
    return warning


async def list_warnings(
    session: AsyncSession, *, principal: Principal, area: str | None, monitored_household_id: uuid.UUID | None,
    source: WarningSource | None, limit: int, after: uuid.UUID | None,
) -> list[MonitoringWarning]:
    stmt = scoped(select(MonitoringWarning), principal, MonitoringWarning.area_code).where(
        access.warning_visible(principal))
    if area is not None:
        stmt = stmt.where(within(MonitoringWarning.area_code, area))
    if monitored_household_id is not None:
        stmt = stmt.where(MonitoringWarning.monitored_household_id == monitored_household_id)
    if source is not None:
        stmt = stmt.where(MonitoringWarning.source == source.value)
    if after is not None:
        stmt = stmt.where(MonitoringWarning.id > after)
    return list((await session.scalars(stmt.order_by(MonitoringWarning.id).limit(limit))).all())
