"""Assistance measures (帮扶措施) of a monitored household's current cycle: kind, responsible unit and
cadre. A household the county decided to monitor with no measure started by its measure deadline
(working days from the decision) is flagged in every list and report."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.monitoring import access
from fupin.monitoring.models import MonitoredHousehold, MonitoringMeasure
from fupin.monitoring.rules import UNDER_MONITORING, MeasureKind, MeasureStatus, Status
from fupin.monitoring.schemas import MeasureCreate
from fupin.monitoring.service import check_cadre
from fupin.pairing.access import caller_cadre, is_cadre


def _snapshot(m: MonitoringMeasure) -> dict[str, object]:
    return {"kind": m.kind, "description": m.description, "responsible_unit": m.responsible_unit,
            "cadre_id": m.cadre_id, "started_on": m.started_on, "amount": m.amount, "status": m.status,
            "cycle": m.cycle, "claim_id": m.claim_id}


def _require_monitored(mh: MonitoredHousehold) -> None:
    if Status(mh.status) not in UNDER_MONITORING:
        raise Conflict("monitoring.not_monitored", "measures belong to a household the county decided to monitor",
                       "仅对已纳入监测的农户落实帮扶措施", extra={"status": mh.status})


async def add_measure(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID, body: MeasureCreate
) -> MonitoringMeasure:
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id, lock=True)
    _require_monitored(mh)
    if body.started_on > business_date():
        raise RuleViolation("monitoring.future_date", "a measure cannot start in the future", "措施开始日期不能晚于今天")
    if body.started_on < mh.opened_on:
        raise RuleViolation("monitoring.measure_before_cycle", "the measure predates the warning",
                            "措施日期早于本轮预警")
    cadre_id = body.cadre_id
    if is_cadre(principal):
        own = await caller_cadre(session, principal)
        if own is None or (cadre_id is not None and cadre_id != own.id):
            raise not_found("cadre")
        cadre_id = own.id
    elif cadre_id is not None:
        await check_cadre(session, principal=principal, cadre_id=cadre_id, area_code=mh.area_code,
                          on=body.started_on)
    return await record_measure(
        session, principal=principal, mh=mh, kind=body.kind, description=body.description,
        responsible_unit=body.responsible_unit, cadre_id=cadre_id, started_on=body.started_on, amount=body.amount,
        status=body.status, claim_id=None,
    )


async def record_measure(
    session: AsyncSession, *, principal: Principal, mh: MonitoredHousehold, kind: MeasureKind, description: str,
    responsible_unit: str, cadre_id: uuid.UUID | None, started_on: date, amount: Decimal | None,
    status: MeasureStatus, claim_id: uuid.UUID | None,
) -> MonitoringMeasure:
    """Write one measure of the household's current cycle (also used by an insurance payout)."""
    measure = MonitoringMeasure(
        id=uuid.uuid4(), area_code=mh.area_code, monitored_household_id=mh.id, cycle=mh.cycle, kind=kind.value,
        description=description, responsible_unit=responsible_unit, cadre_id=cadre_id, started_on=started_on,
        amount=amount, status=status.value, claim_id=claim_id, created_by=principal.username,
    )
    session.add(measure)
    await session.flush()
    await audit.record(session, principal, action="monitoring.measure.create", entity="monitoring_measure",
                       entity_id=measure.id, area_code=mh.area_code, after=_snapshot(measure))
    return measure


async def update_measure(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID, measure_id: uuid.UUID,
    status: MeasureStatus,
) -> MonitoringMeasure:
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id)
    measure = await session.scalar(select(MonitoringMeasure).where(
        MonitoringMeasure.id == measure_id, MonitoringMeasure.monitored_household_id == mh.id).with_for_update())
    if measure is None:
        raise not_found("monitoring_measure")
    before = measure.status
    measure.status = status.value
    await session.flush()
    await audit.record(session, principal, action="monitoring.measure.update", entity="monitoring_measure",
                       entity_id=measure.id, area_code=mh.area_code, before={"status": before},
                       after={"status": measure.status})
    return measure


async def list_measures(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID
) -> list[MonitoringMeasure]:
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id)
    stmt = (select(MonitoringMeasure).where(MonitoringMeasure.monitored_household_id == mh.id)
            .order_by(MonitoringMeasure.cycle, MonitoringMeasure.started_on, MonitoringMeasure.id))
    return list((await session.scalars(stmt)).all())
