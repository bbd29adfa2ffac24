"""The risk workflow, each step by its role with a date and an opinion (`rules.TRANSITIONS`):

warned → verify (village committee's visit: income, expenses, 两不愁三保障, drinking water) → village_review
→ township_check (or back to warned) → county decision: monitor (measure deadline starts) or dismiss.
Risk elimination (风险消除): the village proposes when the elimination rule holds → township → county;
either may refuse it back to `monitored`. Every step is an immutable `monitoring_step` row.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, Forbidden, RuleViolation
from fupin.loans import workdays
from fupin.monitoring import access, rules
from fupin.monitoring.models import MonitoredHousehold, MonitoringStep
from fupin.monitoring.policy import ResolvedRules, rules_on
from fupin.monitoring.rules import NEEDS_OPINION, TRANSITIONS, Status, Step
from fupin.monitoring.schemas import EliminationIn, StepIn, VerificationIn


def _rules_used(resolved: ResolvedRules) -> dict[str, Any]:
    r = resolved.rules
    return {"policy_id": str(resolved.policy.id) if resolved.policy else None,
            "income_line": str(r.income_line), "expense_ratio": str(r.expense_ratio),
            "elimination_months": r.elimination_months}


def _verify(mh: MonitoredHousehold, v: VerificationIn | None, resolved: ResolvedRules) -> dict[str, Any]:
    if v is None:
        raise RuleViolation("monitoring.verification_required", "the verification visit's findings are required",
                            "入户核实须填写核实情况")
    checks = v.checks.model_dump()
    finding = rules.assess(income_per_capita=v.income_per_capita, persons=v.persons,
                           medical_expense=v.medical_expense, disaster_loss=v.disaster_loss, checks=checks,
                           rules=resolved.rules)
    mh.persons, mh.income_per_capita = v.persons, v.income_per_capita
    return {
        "persons": v.persons, "income_per_capita": str(v.income_per_capita),
        "medical_expense": str(v.medical_expense), "disaster_loss": str(v.disaster_loss), "checks": checks,
        "expense_threshold": str(rules.expense_threshold(v.income_per_capita, v.persons, resolved.rules)),
        "income_risk": finding.income_risk, "expense_risk": finding.expense_risk, "gaps": list(finding.gaps),
        "at_risk": finding.at_risk, "rules": _rules_used(resolved),
    }


def _propose_elimination(mh: MonitoredHousehold, e: EliminationIn | None, on: date,
                         resolved: ResolvedRules) -> dict[str, Any]:
    if e is None:
        raise RuleViolation("monitoring.elimination_data_required",
                            "income, since when it is above the line, and the living conditions are required",
                            "风险消除须填写收入、稳定超过监测标准的起始日期和两不愁三保障情况")
    checks = e.checks.model_dump()
    refusals = rules.elimination_refusals(income_per_capita=e.income_per_capita, stable_since=e.stable_since,
                                          on=on, checks=checks, rules=resolved.rules)
    if refusals:
        raise RuleViolation(
            "monitoring.elimination_rule_not_met",
            f"the elimination rule does not hold: {', '.join(refusals)}",
            f"不符合风险消除条件(收入须稳定超过监测标准{resolved.rules.elimination_months}个月以上,且两不愁三保障无缺口)",
            extra={"reasons": refusals, "gaps": rules.gaps(checks)},
        )
    mh.income_per_capita, mh.stable_since = e.income_per_capita, e.stable_since
    return {"income_per_capita": str(e.income_per_capita), "stable_since": e.stable_since.isoformat(),
            "checks": checks, "rules": _rules_used(resolved)}


async def _last_date(session: AsyncSession, mh: MonitoredHousehold) -> date:
    last = await session.scalar(select(func.max(MonitoringStep.on_date)).where(
        MonitoringStep.monitored_household_id == mh.id, MonitoringStep.cycle == mh.cycle))
    return max(last or mh.opened_on, mh.opened_on)


def _check_allowed(principal: Principal, mh: MonitoredHousehold, step: Step, opinion: str) -> None:
    tr = TRANSITIONS[step]
    if principal.role is not tr.role and not principal.is_system:
        raise Forbidden("monitoring.wrong_role", f"{step} is taken by {tr.role}", f"该步骤应由 {tr.role} 办理")
    if Status(mh.status) not in tr.from_states:
        raise Conflict("monitoring.invalid_transition", f"{step} is not possible while {mh.status}",
                       f"当前状态 {mh.status} 不能办理该步骤", extra={"status": mh.status})
    if step in NEEDS_OPINION and not opinion.strip():
        raise RuleViolation("monitoring.opinion_required", "a refusal states its reason", "退回或不予认定须写明理由")


async def _effects(session: AsyncSession, mh: MonitoredHousehold, body: StepIn,
                   resolved: ResolvedRules) -> dict[str, Any]:
    """What a step changes besides the status; returns the details kept on its history row."""
    step = body.step
    if step is Step.verify:
        return _verify(mh, body.verification, resolved)
    if step is Step.propose_elimination:
        return _propose_elimination(mh, body.elimination, body.on, resolved)
    if step is Step.decide_monitor:
        mh.decided_on = body.on
        mh.measure_due_on = await workdays.add_working_days(session, body.on, resolved.rules.measure_days)
        return {"decided_late": body.on > mh.decision_due_on, "measure_due_on": mh.measure_due_on.isoformat()}
    if step is Step.decide_dismiss:
        mh.decided_on = mh.closed_on = body.on
        return {"decided_late": body.on > mh.decision_due_on}
    if step is Step.decide_elimination:
        mh.closed_on = body.on
    if step in (Step.township_reject_elimination, Step.reject_elimination):
        mh.stable_since = None
    return {}


async def take_step(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID, body: StepIn
) -> MonitoringStep:
    """Take the next step of the household's current cycle (role, order and dates checked)."""
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id, lock=True)
    _check_allowed(principal, mh, body.step, body.opinion)
    if body.on > business_date():
        raise RuleViolation("monitoring.future_date", "a step cannot be dated in the future", "办理日期不能晚于今天")
    if body.on < await _last_date(session, mh):
        raise RuleViolation("monitoring.step_date_order", "the step date precedes an earlier step",
                            "办理日期早于上一步骤")
    resolved = await rules_on(session, area_code=mh.area_code, on=body.on)
    before = mh.status
    details = await _effects(session, mh, body, resolved)
    mh.status = TRANSITIONS[body.step].to_state.value
    row = MonitoringStep(
        area_code=mh.area_code, monitored_household_id=mh.id, cycle=mh.cycle, step=body.step.value,
        from_status=before, to_status=mh.status, role=principal.role.value, actor=principal.username,
        on_date=body.on, opinion=body.opinion, details=details,
    )
    session.add(row)
    await session.flush()
    await audit.record(session, principal, action=f"monitoring.step.{body.step.value}", entity="monitored_household",
                       entity_id=mh.id, area_code=mh.area_code,
                       before={"status": before}, after={"status": mh.status, "cycle": mh.cycle, "on": body.on,
                                                         "opinion": body.opinion, **details})
    return row


async def list_steps(
    session: AsyncSession, *, principal: Principal, monitored_household_id: uuid.UUID
) -> list[MonitoringStep]:
    mh = await access.load(session, principal=principal, monitored_household_id=monitored_household_id)
    stmt = (select(MonitoringStep).where(MonitoringStep.monitored_household_id == mh.id)
            .order_by(MonitoringStep.cycle, MonitoringStep.recorded_at, MonitoringStep.on_date))
    return list((await session.scalars(stmt)).all())
