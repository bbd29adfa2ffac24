"""Visits (走访) and help plans (一户一策).

A visit is recorded by the paired cadre, or by staff on the cadre's behalf (`on_behalf`); the cadre
must be paired with the household on the visit date. A cadre reads and writes only their own
households' visits and plans; everything else answers 404.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scoped
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.pairing.access import caller_cadre, household_filter, is_cadre, load_household
from fupin.pairing.models import Cadre, HelpMeasure, HelpPlan, Pairing, Visit


async def _acting_cadre(session: AsyncSession, principal: Principal, cadre_id: uuid.UUID | None) -> tuple[uuid.UUID, bool]:
    """(cadre id, on_behalf): a cadre acts for themselves; staff must name the cadre they act for."""
    if is_cadre(principal):
        own = await caller_cadre(session, principal)
        if own is None or (cadre_id is not None and cadre_id != own.id):
            raise not_found("cadre")
        return own.id, False
    if cadre_id is None:
        raise RuleViolation("visit.cadre_required", "name the cadre you record for", "请指定代为记录的帮扶干部")
    return cadre_id, True


async def _require_paired(
    session: AsyncSession, *, cadre_id: uuid.UUID, household_id: uuid.UUID, on: date | None, code: str
) -> None:
    """The cadre is paired with the household on `on` (end day inclusive), or currently when `on` is None."""
    cond = [Pairing.cadre_id == cadre_id, Pairing.household_id == household_id]
    if on is None:
        cond.append(Pairing.end_date.is_(None))
    else:
        cond += [Pairing.start_date <= on, or_(Pairing.end_date.is_(None), Pairing.end_date >= on)]
    if await session.scalar(select(Pairing.id).where(and_(*cond)).limit(1)) is None:
        raise RuleViolation(code, "the cadre is not paired with this household", "该干部未与该户结对")


async def record_visit(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, cadre_id: uuid.UUID | None,
    visit_date: date, kind: str, findings: str, measures: str, photo_refs: list[str],
    visit_id: uuid.UUID | None = None, client_recorded_at: datetime | None = None,
) -> Visit:
    """`visit_id` and `client_recorded_at`: the phone's id and clock for a visit recorded offline."""
    household = await load_household(session, principal=principal, household_id=household_id)
    acting, on_behalf = await _acting_cadre(session, principal, cadre_id)
    if visit_date > business_date():
        raise RuleViolation("visit.future_date", "a visit cannot be dated in the future", "走访日期不能晚于今天")
    await _require_paired(session, cadre_id=acting, household_id=household.id, on=visit_date,
                          code="visit.cadre_not_paired")
    visit = Visit(area_code=household.area_code, household_id=household.id, cadre_id=acting, visit_date=visit_date,
                  kind=kind, findings=findings, measures=measures, photo_refs=photo_refs,
                  recorded_by=principal.user_id, on_behalf=on_behalf, client_recorded_at=client_recorded_at)
    if visit_id is not None:
        visit.id = visit_id
    session.add(visit)
    await session.flush()
    await audit.record(session, principal, action="visit.create", entity="visit", entity_id=visit.id,
                       area_code=visit.area_code,
                       after={"household_id": household.id, "cadre_id": acting, "visit_date": visit_date,
                              "kind": kind, "on_behalf": on_behalf})
    return visit


def _visits(principal: Principal) -> Any:
    return scoped(select(Visit), principal, Visit.area_code).where(household_filter(principal, Visit.household_id))


async def get_visit(session: AsyncSession, *, principal: Principal, visit_id: uuid.UUID) -> Visit:
    visit = await session.scalar(_visits(principal).where(Visit.id == visit_id))
    if visit is None:
        raise not_found("visit")
    return visit


async def list_visits(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID | None, cadre_id: uuid.UUID | None,
    date_from: date | None, date_to: date | None, limit: int, after: uuid.UUID | None,
) -> list[Visit]:
    stmt = _visits(principal).order_by(Visit.id)
    if household_id:
        stmt = stmt.where(Visit.household_id == household_id)
    if cadre_id:
        stmt = stmt.where(Visit.cadre_id == cadre_id)
    if date_from:
        stmt = stmt.where(Visit.visit_date >= date_from)
    if date_to:
        stmt = stmt.where(Visit.visit_date <= date_to)
    if after:
        stmt = stmt.where(Visit.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


# -- help plans --------------------------------------------------------------------------------


def _measure_after(m: HelpMeasure) -> dict[str, Any]:
    return {"kind": m.kind, "description": m.description, "funds": m.funds, "target_date": m.target_date,
            "status": m.status}


async def create_plan(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, year: int, cadre_id: uuid.UUID | None,
    measures: list[dict[str, Any]],
) -> tuple[HelpPlan, list[HelpMeasure]]:
    household = await load_household(session, principal=principal, household_id=household_id, lock=True)
    acting, _ = await _acting_cadre(session, principal, cadre_id)
    if await session.get(Cadre, acting) is None:
        raise not_found("cadre")
    await _require_paired(session, cadre_id=acting, household_id=household.id, on=None,
                          code="plan.cadre_not_paired")
    exists = await session.scalar(select(HelpPlan.id).where(HelpPlan.household_id == household.id,
                                                            HelpPlan.year == year))
    if exists is not None:
        raise Conflict("plan.exists", f"the household already has a plan for {year}", f"该户已有{year}年帮扶计划",
                       extra={"plan_id": str(exists)})
    plan = HelpPlan(area_code=household.area_code, household_id=household.id, year=year, cadre_id=acting)
    session.add(plan)
    await session.flush()
    rows = [HelpMeasure(area_code=plan.area_code, plan_id=plan.id, position=k, **m) for k, m in enumerate(measures)]
    session.add_all(rows)
    await session.flush()
    await audit.record(session, principal, action="plan.create", entity="help_plan", entity_id=plan.id,
                       area_code=plan.area_code,
                       after={"household_id": household.id, "year": year, "cadre_id": acting,
                              "measures": [_measure_after(m) for m in rows]})
    return plan, rows


async def get_plan(session: AsyncSession, *, principal: Principal, plan_id: uuid.UUID) -> tuple[HelpPlan, list[HelpMeasure]]:
    plan = await session.scalar(
        scoped(select(HelpPlan), principal, HelpPlan.area_code).where(
            HelpPlan.id == plan_id, household_filter(principal, HelpPlan.household_id)
        )
    )
    if plan is None:
        raise not_found("help_plan")
    measures = (await session.scalars(
        select(HelpMeasure).where(HelpMeasure.plan_id == plan.id).order_by(HelpMeasure.position)
    )).all()
    return plan, list(measures)


async def list_plans(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID | None, year: int | None, limit: int,
    after: uuid.UUID | None,
) -> list[tuple[HelpPlan, list[HelpMeasure]]]:
    stmt = scoped(select(HelpPlan), principal, HelpPlan.area_code).where(
        household_filter(principal, HelpPlan.household_id)
    ).order_by(HelpPlan.id)
    if household_id:
        stmt = stmt.where(HelpPlan.household_id == household_id)
    if year:
        stmt = stmt.where(HelpPlan.year == year)
    if after:
        stmt = stmt.where(HelpPlan.id > after)
    plans = list((await session.scalars(stmt.limit(limit))).all())
    by_plan: dict[uuid.UUID, list[HelpMeasure]] = {p.id: [] for p in plans}
    if plans:
        for m in (await session.scalars(
            select(HelpMeasure).where(HelpMeasure.plan_id.in_(list(by_plan))).order_by(HelpMeasure.plan_id,
                                                                                       HelpMeasure.position)
        )).all():
            by_plan[m.plan_id].append(m)
    return [(p, by_plan[p.id]) for p in plans]


async def _writable_plan(session: AsyncSession, principal: Principal, plan_id: uuid.UUID) -> HelpPlan:
    plan, _ = await get_plan(session, principal=principal, plan_id=plan_id)
    if is_cadre(principal):
        own = await caller_cadre(session, principal)
        await _require_paired(session, cadre_id=own.id if own else uuid.uuid4(), household_id=plan.household_id,
                              on=None, code="plan.cadre_not_paired")
    return plan


async def add_measure(
    session: AsyncSession, *, principal: Principal, plan_id: uuid.UUID, measure: dict[str, Any]
) -> tuple[HelpPlan, list[HelpMeasure]]:
    plan = await _writable_plan(session, principal, plan_id)
    await session.execute(select(HelpPlan.id).where(HelpPlan.id == plan.id).with_for_update())
    last = await session.scalar(select(func.max(HelpMeasure.position)).where(HelpMeasure.plan_id == plan.id))
    row = HelpMeasure(area_code=plan.area_code, plan_id=plan.id, position=(last if last is not None else -1) + 1,
                      **measure)
    session.add(row)
    await session.flush()
    await audit.record(session, principal, action="plan.measure_add", entity="help_measure", entity_id=row.id,
                       area_code=plan.area_code, after=_measure_after(row))
    return await get_plan(session, principal=principal, plan_id=plan.id)


async def update_measure(
    session: AsyncSession, *, principal: Principal, plan_id: uuid.UUID, measure_id: uuid.UUID,
    changes: dict[str, Any],
) -> tuple[HelpPlan, list[HelpMeasure]]:
    plan = await _writable_plan(session, principal, plan_id)
    row = await session.scalar(select(HelpMeasure).where(HelpMeasure.id == measure_id,
                                                         HelpMeasure.plan_id == plan.id).with_for_update())
    if row is None:
        raise not_found("help_measure")
    before = _measure_after(row)
    for key, value in changes.items():
        setattr(row, key, value)
    await session.flush()
    await audit.record(session, principal, action="plan.measure_update", entity="help_measure", entity_id=row.id,
                       area_code=plan.area_code, before=before, after=_measure_after(row))
    return await get_plan(session, principal=principal, plan_id=plan.id)


def total_funds(measures: list[HelpMeasure]) -> Decimal:
    return sum((m.funds for m in measures if m.status != "cancelled"), Decimal("0.00"))
