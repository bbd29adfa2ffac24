"""Who sees which monitored household, on top of the area rule (`fupin.areas.scope`).

A user with role cadre sees only the households they are responsible for: registry households they are
actively paired with (the pairing domain's rule), and households entered just for monitoring whose
responsible cadre they are. Warnings are routed to a cadre, and a cadre sees the warnings routed to
them. Everything else answers 404, never 403.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scoped
from fupin.auth.principal import Principal
from fupin.errors import not_found
from fupin.monitoring.models import MonitoredHousehold, MonitoringWarning
from fupin.pairing.access import is_cadre, own_households
from fupin.pairing.models import Cadre, Pairing
from fupin.pairing.structure import ACTIVE


def own_cadre_ids(principal: Principal) -> Select[Any]:
    return select(Cadre.id).where(Cadre.user_id == principal.user_id)


def household_visible(principal: Principal) -> ColumnElement[bool]:
    if not is_cadre(principal):
        return true()
    if principal.user_id is None:
        return false()
    return or_(MonitoredHousehold.household_id.in_(own_households(principal)),
               MonitoredHousehold.cadre_id.in_(own_cadre_ids(principal)))


def households(principal: Principal) -> Select[Any]:
    return scoped(select(MonitoredHousehold), principal, MonitoredHousehold.area_code).where(
        household_visible(principal))


def warning_visible(principal: Principal) -> ColumnElement[bool]:
    if not is_cadre(principal):
        return true()
    if principal.user_id is None:
        return false()
    return MonitoringWarning.cadre_id.in_(own_cadre_ids(principal))


async def load(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID, lock: bool = False
) -> MonitoredHousehold:
    stmt = households(principal).where(MonitoredHousehold.id == monitored_household_id)
    if lock:
        stmt = stmt.with_for_update()
    row: MonitoredHousehold | None = await session.scalar(stmt)
    if row is None:
        raise not_found("monitored_household")
    return row


async def responsible_cadre(session: AsyncSession, mh: MonitoredHousehold) -> uuid.UUID | None:
    """Where a warning is routed: a registry household's longest-standing active pairing with an active
    cadre; otherwise the cadre named on the monitored household (a household outside the registry, or an
    exited one, which the pairing domain no longer pairs)."""
    if mh.household_id is not None:
        paired = await session.scalar(
            select(Pairing.cadre_id).join(Cadre, Cadre.id == Pairing.cadre_id)
            .where(Pairing.household_id == mh.household_id, Pairing.end_date.is_(None), Cadre.status == ACTIVE)
            .order_by(Pairing.start_date, Pairing.id).limit(1)
        )
        if paired is not None:
            return paired
    return mh.cadre_id
