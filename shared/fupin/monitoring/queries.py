"""Reads: monitored households with their deadline flags (the overdue lists), one household with its
people, and the yearly report (by kind, cause, area and month; share with measures; time from warning to
decision; claims and payouts; eliminations; per-township trend)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of, township_of
from fupin.areas.scope import in_scope, visible, within
from fupin.auth.principal import Principal
from fupin.errors import RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.models import Member
from fupin.monitoring import access, rules
from fupin.monitoring.models import (
    InsuranceClaim,
    MonitoredHousehold,
    MonitoredPerson,
    MonitoringMeasure,
    MonitoringStep,
    MonitoringWarning,
)
from fupin.monitoring.rules import BEFORE_DECISION, UNDER_MONITORING, ClaimStatus, Status, Step
from fupin.monitoring.schemas import (
    ClaimFigures,
    MonitoredHouseholdDetail,
    MonitoredHouseholdRead,
    MonitoringReport,
    PersonRead,
    TownshipTrend,
)

MH = MonitoredHousehold
Overdue = Literal["decision", "measures"]
SHARE_PLACES = Decimal("0.000001")
DAY_PLACES = Decimal("0.01")


def decision_overdue(as_of: date) -> ColumnElement[bool]:
    """Still undecided after the deadline (the deadline day itself is in time)."""
    return and_(MH.status.in_([s.value for s in BEFORE_DECISION]), MH.decision_due_on < as_of)


def measures_overdue(as_of: date) -> ColumnElement[bool]:
    """Monitored, the measure deadline passed, and no measure of this cycle started by it."""
    on_time = exists().where(MonitoringMeasure.monitored_household_id == MH.id, MonitoringMeasure.cycle == MH.cycle,
                             MonitoringMeasure.started_on <= MH.measure_due_on)
    return and_(MH.status.in_([s.value for s in UNDER_MONITORING]), MH.measure_due_on < as_of, not_(on_time))


def _read(mh: MonitoredHousehold, late_decision: bool, late_measures: bool) -> MonitoredHouseholdRead:
    base = MonitoredHouseholdRead.model_validate(mh)
    return base.model_copy(update={"decision_overdue": late_decision, "measures_overdue": late_measures})


async def list_households(
    session: AsyncSession, *, principal: Principal, area: str | None, status: Status | None,
    kind: rules.MonitoringKind | None, overdue: Overdue | None, as_of: date, limit: int, after: uuid.UUID | None,
) -> list[MonitoredHouseholdRead]:
    late_decision, late_measures = decision_overdue(as_of), measures_overdue(as_of)
    stmt = access.households(principal).add_columns(late_decision.label("ld"), late_measures.label("lm"))
    if area is not None:
        stmt = stmt.where(within(MH.area_code, area))
    if status is not None:
        stmt = stmt.where(MH.status == status.value)
    if kind is not None:
        stmt = stmt.where(MH.kind == kind.value)
    if overdue == "decision":
        stmt = stmt.where(late_decision)
    elif overdue == "measures":
        stmt = stmt.where(late_measures)
    if after is not None:
        stmt = stmt.where(MH.id > after)
    rows = (await session.execute(stmt.order_by(MH.id).limit(limit))).all()
    return [_read(mh, bool(ld), bool(lm)) for mh, ld, lm in rows]


async def household_detail(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID, as_of: date
) -> MonitoredHouseholdDetail:
    stmt = access.households(principal).add_columns(decision_overdue(as_of), measures_overdue(as_of)).where(
        MH.id == monitored_household_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise not_found("monitored_household")
    mh, ld, lm = row
    # The head first, then by age: a stable order a household's file is read in.
    if mh.household_id is not None:
        people = [(m.id, m.name, m.id_number, m.relation) for m in (await session.scalars(
            select(Member).where(Member.household_id == mh.household_id, Member.active)
            .order_by(Member.relation != household_rules.HEAD, Member.birth_date, Member.id))).all()]
    else:
        people = [(p.id, p.name, p.id_number, p.relation) for p in (await session.scalars(
            select(MonitoredPerson).where(MonitoredPerson.monitored_household_id == mh.id, MonitoredPerson.active)
            .order_by(MonitoredPerson.relation != household_rules.HEAD, MonitoredPerson.birth_date,
                      MonitoredPerson.id))).all()]
    shown = [PersonRead(id=i, name=n, id_number=household_rules.shown_id(num, principal.role), relation=r)
             for i, n, num, r in people]
    return MonitoredHouseholdDetail(**_read(mh, bool(ld), bool(lm)).model_dump(), people=shown)


# --- the yearly report ---------------------------------------------------------------------------------


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(SHARE_PLACES, ROUND_HALF_UP) if whole else None


async def _openings(session: AsyncSession, principal: Principal, area: str, start: date, end: date
                    ) -> list[Any]:
    """Each cycle opened in the period: the warning that opened it, with the household's kind."""
    stmt = select(MonitoringWarning.monitored_household_id, MonitoringWarning.cause, MonitoringWarning.area_code,
                  MonitoringWarning.raised_on, MH.kind).join(MH, MH.id == MonitoringWarning.monitored_household_id)
    stmt = stmt.where(in_scope(principal, MonitoringWarning.area_code), within(MonitoringWarning.area_code, area),
                      MonitoringWarning.opened_cycle,
                      MonitoringWarning.raised_on >= start, MonitoringWarning.raised_on <= end)
    return list((await session.execute(stmt)).all())


async def _decisions(session: AsyncSession, principal: Principal, area: str, start: date, end: date
                     ) -> list[Any]:
    """County decisions and eliminations in the period, each with the opening date of its cycle."""
    opened = select(MonitoringStep.monitored_household_id, MonitoringStep.cycle,
                    MonitoringStep.on_date.label("opened_on")).where(MonitoringStep.step == rules.OPEN_STEP).subquery()
    stmt = select(MonitoringStep.step, MonitoringStep.area_code, MonitoringStep.on_date, MonitoringStep.details,
                  opened.c.opened_on).join(opened, and_(
                      opened.c.monitored_household_id == MonitoringStep.monitored_household_id,
                      opened.c.cycle == MonitoringStep.cycle))
    stmt = stmt.where(in_scope(principal, MonitoringStep.area_code), within(MonitoringStep.area_code, area),
                      MonitoringStep.step.in_([Step.decide_monitor.value, Step.decide_dismiss.value,
                                               Step.decide_elimination.value]),
                      MonitoringStep.on_date >= start, MonitoringStep.on_date <= end)
    return list((await session.execute(stmt)).all())


async def _current(session: AsyncSession, principal: Principal, area: str, as_of: date) -> tuple[int, int, int]:
    """(under monitoring now, of them with a measure this cycle, undecided past the deadline)."""
    has_measure = exists().where(MonitoringMeasure.monitored_household_id == MH.id, MonitoringMeasure.cycle == MH.cycle)
    under = MH.status.in_([s.value for s in UNDER_MONITORING])
    row = (await session.execute(select(
        func.count().filter(under), func.count().filter(and_(under, has_measure)),
        func.count().filter(decision_overdue(as_of)),
    ).select_from(MH).where(in_scope(principal, MH.area_code), within(MH.area_code, area)))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _claims(session: AsyncSession, principal: Principal, area: str, start: date, end: date) -> ClaimFigures:
    base = select(InsuranceClaim.status, func.count()).where(
        in_scope(principal, InsuranceClaim.area_code), within(InsuranceClaim.area_code, area),
        InsuranceClaim.submitted_on >= start,
        InsuranceClaim.submitted_on <= end).group_by(InsuranceClaim.status)
    counts = {ClaimStatus(s): int(n) for s, n in (await session.execute(base)).all()}
    paid = (await session.execute(select(
        func.coalesce(func.sum(InsuranceClaim.payable), 0), func.count(func.distinct(InsuranceClaim.person_id)),
    ).where(
        in_scope(principal, InsuranceClaim.area_code), within(InsuranceClaim.area_code, area),
        InsuranceClaim.status == ClaimStatus.paid.value,
        InsuranceClaim.paid_on >= start, InsuranceClaim.paid_on <= end))).one()
    total, persons = Decimal(paid[0] or 0).quantize(DAY_PLACES), int(paid[1])
    return ClaimFigures(by_status={s: counts.get(s, 0) for s in ClaimStatus}, paid_total=total,
                        persons_aided=persons, per_person=rules.per_person(total, persons))


def _trend(openings: list[Any], decisions: list[Any]) -> list[TownshipTrend]:
    cells: dict[tuple[str, str], Counter[str]] = {}
    for o in openings:
        cells.setdefault((township_of(o.area_code), o.raised_on.strftime("%Y-%m")), Counter())["warned"] += 1
    for d in decisions:
        key = {Step.decide_monitor.value: "monitored", Step.decide_elimination.value: "eliminated"}.get(d.step)
        if key:
            cells.setdefault((township_of(d.area_code), d.on_date.strftime("%Y-%m")), Counter())[key] += 1
    return [TownshipTrend(area_code=t, month=m, warned=c["warned"], monitored=c["monitored"],
                          eliminated=c["eliminated"]) for (t, m), c in sorted(cells.items())]


async def report(session: AsyncSession, *, principal: Principal, area: str, year: int, as_of: date
                 ) -> MonitoringReport:
    if level_of(area) not in (Level.county, Level.township) or not visible(principal, area):
        raise not_found("area")
    if not 2000 <= year <= 2100:
        raise RuleViolation("monitoring.bad_year", "a year between 2000 and 2100", "年份须在2000至2100之间")
    start, end = date(year, 1, 1), date(year, 12, 31)
    openings = await _openings(session, principal, area, start, end)
    decisions = await _decisions(session, principal, area, start, end)
    under, with_measures, overdue_now = await _current(session, principal, area, as_of)
    decided = [d for d in decisions if d.step != Step.decide_elimination.value]
    days = [(d.on_date - d.opened_on).days for d in decided]
    return MonitoringReport(
        area_code=area, year=year, households=len({o.monitored_household_id for o in openings}),
        by_kind=dict(Counter(rules.MonitoringKind(o.kind) for o in openings)),
        by_cause=dict(Counter(rules.RiskCause(o.cause) for o in openings)),
        by_area=dict(sorted(Counter(township_of(o.area_code) for o in openings).items())),
        by_month=dict(sorted(Counter(o.raised_on.strftime("%Y-%m") for o in openings).items())),
        under_monitoring=under, with_measures=with_measures, measures_share=_share(with_measures, under),
        decided=len(decided), decided_late=sum(1 for d in decided if d.details.get("decided_late")),
        average_days_to_decision=(Decimal(sum(days)) / len(days)).quantize(DAY_PLACES, ROUND_HALF_UP) if days else None,
        overdue_now=overdue_now, eliminated=sum(1 for d in decisions if d.step == Step.decide_elimination.value),
        claims=await _claims(session, principal, area, start, end), trend=_trend(openings, decisions),
    )
