"""Household registry rules: create and edit households, members, the identification workflow
(两公示一公告) and dynamic management (动态管理), each change an immutable history row."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of
from fupin.areas.models import Area
from fupin.areas.scope import visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, Forbidden, RuleViolation, not_found
from fupin.households import queries, rules
from fupin.households.models import Household, HouseholdEvent, Member
from fupin.households.schemas import (
    HouseholdCreate,
    HouseholdRead,
    HouseholdSummary,
    HouseholdUpdate,
    MemberIn,
    MemberRead,
    MemberUpdate,
    TransitionIn,
)

# --- helpers -----------------------------------------------------------------------------------


async def id_owners(session: AsyncSession, ids: Sequence[str]) -> dict[str, tuple[uuid.UUID, str]]:
    """Active owners of these ID numbers anywhere (past RLS, via a SECURITY DEFINER function)."""
    if not ids:
        return {}
    rows = await session.execute(
        text("SELECT id_number, household_id, area_code FROM fupin_member_id_owners(CAST(:ids AS text[]))"),
        {"ids": list(ids)},
    )
    return {r.id_number: (r.household_id, r.area_code) for r in rows}


def duplicate_id(principal: Principal, area_code: str, number: str) -> Conflict:
    extra: dict[str, Any] = {"id_number": rules.mask_id(number)}
    if visible(principal, area_code):
        extra["area_code"] = area_code
    return Conflict(
        "member.id_duplicate", "this ID number already belongs to an active household",
        "该身份证号码已在其他在册农户中登记", extra=extra,
    )


def _event(
    principal: Principal, h: Household, *, kind: str, on: date, from_status: str | None = None,
    to_status: str | None = None, details: dict[str, Any] | None = None, **kw: Any,
) -> HouseholdEvent:
    return HouseholdEvent(
        id=uuid.uuid4(), household_id=h.id, area_code=h.area_code, kind=kind, from_status=from_status,
        to_status=to_status, occurred_on=on, actor_id=principal.user_id, actor_name=principal.username,
        actor_role=principal.role.value, details=details or {}, **kw,
    )


def present_member(m: Member, principal: Principal) -> MemberRead:
    return MemberRead(
        id=m.id, name=m.name, id_number=rules.shown_id(m.id_number, principal.role), sex=m.sex,
        birth_date=m.birth_date, relation=m.relation, labour=m.labour, full_civil_capacity=m.full_civil_capacity,
        in_school=m.in_school, health=m.health, disability=m.disability, active=m.active,
    )


def present(h: Household, members: Iterable[Member], principal: Principal) -> HouseholdRead:
    summary = HouseholdSummary.model_validate(h)
    return HouseholdRead(**summary.model_dump(), members=[present_member(m, principal) for m in members],
                         allowed_actions=rules.allowed_steps(h.status, principal.role))


def _check_heads(members: Sequence[MemberIn | Member]) -> None:
    heads = sum(1 for m in members if m.relation == rules.HEAD and getattr(m, "active", True))
    if heads != 1:
        raise RuleViolation("household.head_count", "a household has exactly one head (户主)", "每户须有且仅有一名户主")


async def _village(session: AsyncSession, principal: Principal, code: str) -> Area:
    area = await session.get(Area, code)
    if area is None or not visible(principal, code):
        raise not_found("area")
    if level_of(code) is not Level.village:
        raise RuleViolation("household.area_not_village", "a household belongs to a village", "农户须归属到村")
    return area


def _members_from(h: Household, items: Sequence[MemberIn]) -> list[Member]:
    out: list[Member] = []
    seen: set[str] = set()
    for item in items:
        info = rules.check_member_identity(item.id_number, sex=item.sex, birth_date=item.birth_date)
        if info.number in seen:
            raise Conflict("member.id_duplicate", "the same ID number is given twice", "身份证号码重复",
                           extra={"id_number": rules.mask_id(info.number)})
        seen.add(info.number)
        out.append(Member(
            id=uuid.uuid4(), household_id=h.id, area_code=h.area_code, name=item.name, id_number=info.number,
            sex=info.sex, birth_date=info.birth_date, relation=item.relation, labour=item.labour,
            full_civil_capacity=item.full_civil_capacity, in_school=item.in_school, health=item.health,
            disability=item.disability, active=True,
        ))
    return out


async def _refuse_taken(session: AsyncSession, principal: Principal, members: Sequence[Member]) -> None:
    owners = await id_owners(session, [m.id_number for m in members])
    for m in members:
        if m.id_number in owners and owners[m.id_number][0] != m.household_id:
            raise duplicate_id(principal, owners[m.id_number][1], m.id_number)


async def _insert_members(session: AsyncSession, principal: Principal, members: Sequence[Member]) -> None:
    """Insert under a savepoint: a concurrent registration of the same ID number loses the unique-index race
    and answers the same 409 as the pre-check, not a bare integrity error."""
    try:
        async with session.begin_nested():
            session.add_all(members)
            await session.flush()
    except IntegrityError as exc:
        if "uq_member_active_id_number" not in str(exc.orig):
            raise
        await _refuse_taken(session, principal, members)
        raise duplicate_id(principal, "", members[0].id_number) from None


async def members_of(session: AsyncSession, household_id: uuid.UUID) -> list[Member]:
    stmt = select(Member).where(Member.household_id == household_id).order_by(*queries.MEMBER_ORDER)
    return list((await session.scalars(stmt)).all())


# --- households --------------------------------------------------------------------------------


async def create_household(session: AsyncSession, *, principal: Principal, data: HouseholdCreate) -> HouseholdRead:
    """Record an application (本人申请): the case starts at `applied` with its members."""
    await _village(session, principal, data.area_code)
    _check_heads(data.members)
    exists = await session.scalar(
        select(func.count()).select_from(Household)
        .where(Household.area_code == data.area_code, Household.household_no == data.household_no)
    )
    if exists:
        raise Conflict("household.number_taken", "this household number is used in the village", "该户编号在本村已存在")
    h = Household(
        id=uuid.uuid4(), area_code=data.area_code, household_no=data.household_no, head_name=data.head_name,
        address=data.address, category=data.category, main_cause=data.main_cause,
        secondary_causes=list(data.secondary_causes), income_per_capita=data.income_per_capita,
        family_planning=data.family_planning, veteran=data.veteran, status="applied",
    )
    members = _members_from(h, data.members)
    await _refuse_taken(session, principal, members)
    session.add(h)
    await session.flush()
    await _insert_members(session, principal, members)
    session.add(_event(principal, h, kind="transition", on=data.applied_on, to_status="applied"))
    await session.flush()
    await audit.record(
        session, principal, action="household.create", entity="household", entity_id=h.id, area_code=h.area_code,
        after={"household_no": h.household_no, "status": h.status, "members": len(members)},
    )
    return present(h, members, principal)


async def get_household(session: AsyncSession, *, principal: Principal, household_id: uuid.UUID) -> Household:
    h = await session.get(Household, household_id)
    if h is None or not visible(principal, h.area_code):
        raise not_found("household")
    return h


async def read_household(session: AsyncSession, *, principal: Principal, household_id: uuid.UUID) -> HouseholdRead:
    h = await get_household(session, principal=principal, household_id=household_id)
    return present(h, await members_of(session, h.id), principal)


def _open(h: Household) -> None:
    if h.status in rules.CLOSED:
        raise RuleViolation("household.closed", f"the case is closed ({h.status})", "该户已结案", status=409)


_FIELDS = ("head_name", "address", "category", "main_cause", "secondary_causes", "income_per_capita",
           "family_planning", "veteran")


async def update_household(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, data: HouseholdUpdate
) -> HouseholdRead:
    h = await get_household(session, principal=principal, household_id=household_id)
    _open(h)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    before = {k: getattr(h, k) for k in changes}
    for k, v in changes.items():
        setattr(h, k, list(v) if k == "secondary_causes" else v)
    session.add(_event(principal, h, kind="update", on=business_date(), details={"fields": sorted(changes)}))
    await session.flush()
    await audit.record(
        session, principal, action="household.update", entity="household", entity_id=h.id, area_code=h.area_code,
        before=before, after=changes,
    )
    return present(h, await members_of(session, h.id), principal)


async def add_members(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, items: Sequence[MemberIn]
) -> HouseholdRead:
    h = await get_household(session, principal=principal, household_id=household_id)
    _open(h)
    current = await members_of(session, h.id)
    new = _members_from(h, items)
    _check_heads([*current, *new])
    await _refuse_taken(session, principal, new)
    await _insert_members(session, principal, new)
    session.add(_event(principal, h, kind="member", on=business_date(), details={"added": [str(m.id) for m in new]}))
    await session.flush()
    await audit.record(
        session, principal, action="household.member_add", entity="household", entity_id=h.id,
        area_code=h.area_code, after={"members": [str(m.id) for m in new]},
    )
    return present(h, [*current, *new], principal)


async def update_member(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, member_id: uuid.UUID, data: MemberUpdate
) -> HouseholdRead:
    h = await get_household(session, principal=principal, household_id=household_id)
    _open(h)
    current = await members_of(session, h.id)
    m = next((x for x in current if x.id == member_id), None)
    if m is None:
        raise not_found("member")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if changes.get("active") and not m.active:
        await _refuse_taken(session, principal, [m])
    before = {k: getattr(m, k) for k in changes}
    for k, v in changes.items():
        setattr(m, k, v)
    _check_heads(current)
    session.add(_event(principal, h, kind="member", on=business_date(),
                       details={"member": str(m.id), "fields": sorted(changes)}))
    await session.flush()
    await audit.record(
        session, principal, action="household.member_update", entity="household_member", entity_id=m.id,
        area_code=h.area_code, before=before, after=changes,
    )
    return present(h, current, principal)


# --- workflow ----------------------------------------------------------------------------------


async def transition(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, data: TransitionIn
) -> HouseholdEvent:
    """One step of identification or dynamic management, by the role that owns it."""
    h = await get_household(session, principal=principal, household_id=household_id)
    # lock the row so two concurrent steps cannot both start from the same status
    await session.execute(select(Household.id).where(Household.id == h.id).with_for_update())
    await session.refresh(h)
    current, target = h.status, data.to
    rules.check_transition(current, target)
    owner = rules.step_owner(target, current)
    if not principal.is_system and principal.role is not owner:
        raise Forbidden(
            "household.step_not_yours", f"{target} is done by {owner}", f"该步骤应由 {owner} 办理",
            extra={"owner": str(owner)},
        )
    if data.on > business_date():
        raise RuleViolation("household.date_in_future", "the step cannot be dated in the future", "日期不能晚于今天")
    last = await session.scalar(
        select(func.max(HouseholdEvent.occurred_on))
        .where(HouseholdEvent.household_id == h.id, HouseholdEvent.kind == "transition")
    )
    if last is not None and data.on < last:
        raise RuleViolation("household.date_before_previous", "the step is dated before the previous step",
                            "日期早于上一步骤")
    kw: dict[str, Any] = {}
    if target in rules.NOTICE_STEPS:
        if data.notice_start is None or data.notice_end is None or data.notice_end < data.notice_start:
            raise RuleViolation("household.notice_period_required", "a public notice needs its start and end dates",
                                "公示须填写起止日期")
        if data.notice_end > data.on:
            raise RuleViolation("household.notice_not_over", "the notice period has not ended on the step date",
                                "公示期尚未结束")
        kw.update(notice_start=data.notice_start, notice_end=data.notice_end)
    if target in ("rejected", "removed", "returned_to_poverty") and not data.reason:
        raise RuleViolation("household.reason_required", "give a reason", "须填写原因")
    details: dict[str, Any] = {}
    if target == "exited":
        if data.year is None:
            raise RuleViolation("household.exit_year_required", "give the exit year", "须填写脱贫年度")
        confirmed: dict[str, bool] = {str(k): v for k, v in (data.confirmations or {}).items()}
        missing = [c for c in rules.EXIT_CHECKS if not confirmed.get(c)]
        if missing:
            raise RuleViolation(
                "household.exit_unconfirmed", "两不愁三保障 must all be confirmed before exit",
                "脱贫须确认两不愁三保障", extra={"missing": missing},
            )
        details["confirmations"] = dict.fromkeys(rules.EXIT_CHECKS, True)
        h.year_exited = data.year
        kw["year"] = data.year
    if target == "registered":
        h.year_identified = data.on.year
        kw["year"] = data.on.year
    if target == "returned_to_poverty":
        h.year_exited = None
    if target in rules.CLOSED:
        # the ID numbers may be registered again elsewhere
        await session.execute(update(Member).where(Member.household_id == h.id).values(active=False))
    h.status = target
    ev = _event(principal, h, kind="transition", on=data.on, from_status=current, to_status=target,
                reason=data.reason, details=details, **kw)
    session.add(ev)
    await session.flush()
    await audit.record(
        session, principal, action=f"household.{target}", entity="household", entity_id=h.id,
        area_code=h.area_code, before={"status": current}, after={"status": target, "reason": data.reason},
    )
    return ev


async def list_events(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, transitions_only: bool
) -> list[HouseholdEvent]:
    h = await get_household(session, principal=principal, household_id=household_id)
    stmt = select(HouseholdEvent).where(HouseholdEvent.household_id == h.id)
    if transitions_only:
        stmt = stmt.where(HouseholdEvent.kind.in_(("transition", "import")))
    stmt = stmt.order_by(HouseholdEvent.recorded_at, HouseholdEvent.occurred_on, HouseholdEvent.id)
    return list((await session.scalars(stmt)).all())
