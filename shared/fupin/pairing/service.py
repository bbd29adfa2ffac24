"""Cadre↔household pairings (干部包户) and the atomic handover of a departing cadre's households.

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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import county_of
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households.models import Household
from fupin.pairing.access import EXITED, household_filter, load_cadre, load_household
from fupin.pairing.models import Cadre, Pairing
from fupin.pairing.structure import ACTIVE, check_dates, require_active, setting_on, snapshot

# -- pairings ----------------------------------------------------------------------------------


async def _pair(
    session: AsyncSession, *, principal: Principal, cadre_id: uuid.UUID, household: Household, start_date: date
) -> Pairing:
    """Every rule for putting a household with a cadre; the cadre row is locked so caps hold under concurrency."""
    cadre = await load_cadre(session, principal=principal, cadre_id=cadre_id, lock=True)
    if cadre.area_code != county_of(household.area_code):
        raise not_found("cadre")
    require_active(cadre)
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
                       after=snapshot(pairing, "cadre_id", "household_id", "start_date"))
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
    check_dates(pairing.start_date, end_date)
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
    before = snapshot(pairing, "end_date", "end_reason", "successor_id")
    pairing.end_date = end_date
    pairing.end_reason = reason
    pairing.successor_id = successor.id if successor else None
    await session.flush()
    await audit.record(session, principal, action="pairing.end", entity="pairing", entity_id=pairing.id,
                       area_code=pairing.area_code, before=before,
                       after=snapshot(pairing, "end_date", "end_reason", "successor_id"))
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
