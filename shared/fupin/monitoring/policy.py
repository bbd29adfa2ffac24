"""The county's monitoring policy, effective-dated: the income line, the large-expense rule, the decision
and measure deadlines (working days) and the elimination rule. A county without a policy runs on our
defaults, which every read marks as defaults to be confirmed by the county."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.models import Area
from fupin.areas.scope import visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.monitoring.models import MonitoringPolicy
from fupin.monitoring.rules import DEFAULT_RULES, MonitoringRules
from fupin.pairing.access import in_directory

FIELDS = ("income_line", "expense_ratio", "decision_days", "elimination_months", "measure_days")


@dataclass(frozen=True)
class ResolvedRules:
    county_code: str
    on: date
    rules: MonitoringRules
    policy: MonitoringPolicy | None

    @property
    def is_default(self) -> bool:
        return self.policy is None


def _snapshot(p: MonitoringPolicy) -> dict[str, object]:
    return {"effective_from": p.effective_from, "note": p.note, **{f: getattr(p, f) for f in FIELDS}}


async def create_policy(
    session: AsyncSession, *, principal: Principal, area_code: str, effective_from: date, income_line: Decimal,
    expense_ratio: Decimal, decision_days: int, elimination_months: int, measure_days: int, note: str,
) -> MonitoringPolicy:
    """A county sets its rules from a date on; policies are never edited (a later one supersedes)."""
    if level_of(area_code) is not Level.county:
        raise RuleViolation("monitoring.policy_not_county", "a monitoring policy belongs to a county",
                            "防返贫监测政策须属于县级区划")
    if not visible(principal, area_code) or await session.get(Area, area_code) is None:
        raise not_found("area")
    exists = await session.scalar(select(MonitoringPolicy.id).where(
        MonitoringPolicy.area_code == area_code, MonitoringPolicy.effective_from == effective_from))
    if exists is not None:
        raise Conflict("monitoring.policy_exists",
                       "a policy from this date exists; policies are never edited, add one from a later date",
                       "该生效日期的监测政策已存在,政策不可修改,请从更晚日期新增")
    policy = MonitoringPolicy(
        id=uuid.uuid4(), area_code=area_code, effective_from=effective_from, income_line=income_line,
        expense_ratio=expense_ratio, decision_days=decision_days, elimination_months=elimination_months,
        measure_days=measure_days, note=note, created_by=principal.username,
    )
    session.add(policy)
    await session.flush()
    await audit.record(session, principal, action="monitoring.policy.create", entity="monitoring_policy",
                       entity_id=policy.id, area_code=area_code, after=_snapshot(policy))
    return policy


async def list_policies(session: AsyncSession, *, principal: Principal) -> list[MonitoringPolicy]:
    """The policies of the caller's county (a township or village reads its county's)."""
    stmt = (select(MonitoringPolicy).where(in_directory(principal, MonitoringPolicy.area_code))
            .order_by(MonitoringPolicy.area_code, MonitoringPolicy.effective_from))
    return list((await session.scalars(stmt)).all())


async def rules_on(session: AsyncSession, *, area_code: str, on: date) -> ResolvedRules:
    """The rules in force on `on` for the county containing `area_code`."""
    county = county_of(area_code)
    row = await session.scalar(
        select(MonitoringPolicy)
        .where(MonitoringPolicy.area_code == county, MonitoringPolicy.effective_from <= on)
        .order_by(MonitoringPolicy.effective_from.desc())
        .limit(1)
    )
    if row is None:
        return ResolvedRules(county, on, DEFAULT_RULES, None)
    rules = MonitoringRules(row.income_line, row.expense_ratio, row.decision_days, row.elimination_months,
                            row.measure_days)
    return ResolvedRules(county, on, rules, row)


async def rules_for_caller(session: AsyncSession, *, principal: Principal, area_code: str, on: date) -> ResolvedRules:
    if level_of(area_code) in (Level.province, Level.city):
        raise RuleViolation("monitoring.area_below_county", "name a county, township or village",
                            "请指定县、乡镇或村级区划")
    county = county_of(area_code)
    if not (visible(principal, area_code) or principal.area_code[:6] == county[:6]):
        raise not_found("area")
    return await rules_on(session, area_code=county, on=on)
