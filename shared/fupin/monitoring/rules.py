"""Pure rules of poverty-return prevention (防返贫, W-19): who is monitored, when a household is at risk,
the workflow table, when a risk counts as eliminated, and the tiered poverty-prevention insurance payout.

Source: 003 L241 「针对"非高标准脱贫户"和"非贫低收入户"两类人员,动态监测、及时预警,开展精准防贫救助」;
「对已救助人员明确专人结对帮扶」. The thresholds are the county's settings (`monitoring_policy`); the
defaults below are ours, marked in the API as defaults the county must confirm.

Boundaries (each tested exactly):
- income rule: at risk when the annual income per person is *below* the line (¥5,999.99 < ¥6,000.00
  is a risk; ¥6,000.00 is not);
- expense rule: at risk when medical out-of-pocket cost or disaster loss is *above* the ratio of the
  household's annual income (exactly 50 % is not a risk; one fen more is);
- elimination: income *above* the line (¥6,000.00 is not enough) for at least the policy's months
  (stable since 15 January → eligible on 15 July, not on 14 July), and no 两不愁三保障 or water gap.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fupin.auth.roles import Role
from fupin.errors import RuleViolation
from fupin.loans.postings import add_months
from fupin.money import ZERO, round_fen


class MonitoringKind(StrEnum):
    unstable_exited = "unstable_exited"  # 脱贫不稳定户 (the seed's 非高标准脱贫户): exited without a margin
    marginal = "marginal"  # 边缘易致贫户 (the seed's 非贫低收入户): low income, never registered
    sudden_hardship = "sudden_hardship"  # 突发严重困难户: a sudden severe difficulty


class RiskCause(StrEnum):
    illness = "illness"  # 因病
    accident = "accident"  # 意外事故
    disaster = "disaster"  # 因灾
    disability = "disability"  # 因残
    schooling = "schooling"  # 因学
    unemployment = "unemployment"  # 务工就业不稳
    income_drop = "income_drop"  # 收入骤减
    housing = "housing"  # 住房安全
    water = "water"  # 饮水安全
    other = "other"


class WarningSource(StrEnum):
    self_report = "self_report"  # the household's own report, through the village committee
    cadre_visit = "cadre_visit"  # found on a paired cadre's visit
    screening = "screening"  # a department's file matched by ID number


class ScreeningSource(StrEnum):
    medical = "medical"  # 医保: out-of-pocket bills
    civil_affairs = "civil_affairs"  # 民政: 低保, 特困
    disability = "disability"  # 残联
    housing = "housing"  # 住建: unsafe housing
    water = "water"  # 水利: drinking water
    disaster = "disaster"  # 应急: disaster losses


# Sources whose rows carry an amount the expense rule weighs; every match of the others is a warning.
AMOUNT_SOURCES = frozenset({ScreeningSource.medical, ScreeningSource.disaster})
SOURCE_CAUSE: dict[ScreeningSource, RiskCause] = {
    ScreeningSource.medical: RiskCause.illness,
    ScreeningSource.civil_affairs: RiskCause.income_drop,
    ScreeningSource.disability: RiskCause.disability,
    ScreeningSource.housing: RiskCause.housing,
    ScreeningSource.water: RiskCause.water,
    ScreeningSource.disaster: RiskCause.disaster,
}


class RowOutcome(StrEnum):
    warning = "warning"  # opened a warning (a new monitoring cycle)
    attached = "attached"  # the household's case is open: the finding is added to it
    below_threshold = "below_threshold"  # matched, but the amount is not above the expense rule
    in_registry = "in_registry"  # a registered household that has not exited: already assisted
    unmatched = "unmatched"  # no person with this ID number in the area


class MonitoringStatus(StrEnum):
    warned = "warned"  # 预警: waiting for the village's verification visit
    verified = "verified"  # 村入户核实
    village_reviewed = "village_reviewed"  # 村评议
    township_checked = "township_checked"  # 乡镇审核
    monitored = "monitored"  # 县确定纳入监测
    dismissed = "dismissed"  # 县确定不纳入
    elimination_proposed = "elimination_proposed"  # 村提出风险消除
    elimination_checked = "elimination_checked"  # 乡镇审核风险消除
    eliminated = "eliminated"  # 县确认风险消除


Status = MonitoringStatus  # the short name importers use; the OpenAPI name must be unique


BEFORE_DECISION = frozenset({Status.warned, Status.verified, Status.village_reviewed, Status.township_checked})
CLOSED = frozenset({Status.dismissed, Status.eliminated})
UNDER_MONITORING = frozenset({Status.monitored, Status.elimination_proposed, Status.elimination_checked})


# The history row that opens a cycle (written by a warning, not a step anyone takes).
OPEN_STEP = "open"


class Step(StrEnum):
    verify = "verify"
    village_review = "village_review"
    township_check = "township_check"
    township_return = "township_return"
    decide_monitor = "decide_monitor"
    decide_dismiss = "decide_dismiss"
    propose_elimination = "propose_elimination"
    township_confirm_elimination = "township_confirm_elimination"
    township_reject_elimination = "township_reject_elimination"
    decide_elimination = "decide_elimination"
    reject_elimination = "reject_elimination"


@dataclass(frozen=True)
class Transition:
    role: Role
    from_states: frozenset[Status]
    to_state: Status


TRANSITIONS: dict[Step, Transition] = {
    Step.verify: Transition(Role.village_committee, frozenset({Status.warned}), Status.verified),
    Step.village_review: Transition(Role.village_committee, frozenset({Status.verified}), Status.village_reviewed),
    Step.township_check: Transition(Role.township_station, frozenset({Status.village_reviewed}),
                                    Status.township_checked),
    # The township sends a case back for a new verification visit; the decision deadline keeps running.
    Step.township_return: Transition(Role.township_station, frozenset({Status.village_reviewed}), Status.warned),
    Step.decide_monitor: Transition(Role.poverty_office, frozenset({Status.township_checked}), Status.monitored),
    Step.decide_dismiss: Transition(Role.poverty_office, frozenset({Status.township_checked}), Status.dismissed),
    Step.propose_elimination: Transition(Role.village_committee, frozenset({Status.monitored}),
                                         Status.elimination_proposed),
    Step.township_confirm_elimination: Transition(Role.township_station, frozenset({Status.elimination_proposed}),
                                                  Status.elimination_checked),
    Step.township_reject_elimination: Transition(Role.township_station, frozenset({Status.elimination_proposed}),
                                                 Status.monitored),
    Step.decide_elimination: Transition(Role.poverty_office, frozenset({Status.elimination_checked}),
                                        Status.eliminated),
    Step.reject_elimination: Transition(Role.poverty_office, frozenset({Status.elimination_checked}),
                                        Status.monitored),
}
# Steps that refuse and so must say why.
NEEDS_OPINION = frozenset({Step.township_return, Step.decide_dismiss, Step.township_reject_elimination,
                           Step.reject_elimination})


class MeasureKind(StrEnum):
    industry = "industry"  # 产业
    employment = "employment"  # 就业
    medical_aid = "medical_aid"  # 医疗救助
    dibao = "dibao"  # 低保/兜底
    education = "education"  # 教育
    housing = "housing"  # 住房
    water = "water"  # 饮水
    insurance = "insurance"  # 防贫保险赔付
    other = "other"


class MeasureStatus(StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    done = "done"


class ClaimStatus(StrEnum):
    submitted = "submitted"
    assessed = "assessed"
    approved = "approved"
    paid = "paid"
    rejected = "rejected"


# 两不愁三保障 plus drinking water, as the verification visit records them (True = guaranteed).
LIVING_CHECKS = ("food", "clothing", "compulsory_education", "basic_medical", "housing_safety", "drinking_water")


@dataclass(frozen=True)
class MonitoringRules:
    """A county's monitoring settings. The defaults are ours, to be confirmed by each county."""

    income_line: Decimal = Decimal("6000.00")  # yuan per person per year
    expense_ratio: Decimal = Decimal("0.500000")  # of the household's annual income
    decision_days: int = 15  # working days from the warning to the county's decision
    elimination_months: int = 6  # months above the line before a risk counts as eliminated
    measure_days: int = 15  # working days from the decision to monitor to the first assistance measure


DEFAULT_RULES = MonitoringRules()


def annual_income(income_per_capita: Decimal, persons: int) -> Decimal:
    return income_per_capita * persons


def income_at_risk(income_per_capita: Decimal, rules: MonitoringRules) -> bool:
    return income_per_capita < rules.income_line


def expense_threshold(income_per_capita: Decimal, persons: int, rules: MonitoringRules) -> Decimal:
    """The amount a household's expense must exceed, exact (not rounded: ¥0.005 above is above)."""
    return rules.expense_ratio * annual_income(income_per_capita, persons)


def expense_at_risk(expense: Decimal, income_per_capita: Decimal, persons: int, rules: MonitoringRules) -> bool:
    return expense > expense_threshold(income_per_capita, persons, rules)


def gaps(checks: Mapping[str, bool]) -> list[str]:
    """The 两不愁三保障 and water items not guaranteed (an item not reported counts as a gap)."""
    return [c for c in LIVING_CHECKS if not checks.get(c, False)]


@dataclass(frozen=True)
class RiskFinding:
    income_risk: bool
    expense_risk: bool
    gaps: tuple[str, ...]

    @property
    def at_risk(self) -> bool:
        return self.income_risk or self.expense_risk or bool(self.gaps)


def assess(
    *, income_per_capita: Decimal, persons: int, medical_expense: Decimal, disaster_loss: Decimal,
    checks: Mapping[str, bool], rules: MonitoringRules,
) -> RiskFinding:
    """What a verification visit finds: the income rule, the expense rule (medical or disaster, each on
    its own, as the policy names them) and the living-condition gaps."""
    expense = any(expense_at_risk(x, income_per_capita, persons, rules) for x in (medical_expense, disaster_loss))
    return RiskFinding(income_at_risk(income_per_capita, rules), expense, tuple(gaps(checks)))


def elimination_refusals(
    *, income_per_capita: Decimal, stable_since: date, on: date, checks: Mapping[str, bool], rules: MonitoringRules,
) -> list[str]:
    """Why the elimination rule does not hold yet (empty: it holds)."""
    reasons = []
    if income_per_capita <= rules.income_line:
        reasons.append("income_not_above_line")
    if add_months(stable_since, rules.elimination_months) > on:
        reasons.append("not_long_enough_above_line")
    if gaps(checks):
        reasons.append("living_condition_gap")
    return reasons


# --- poverty-prevention insurance (防贫保险) ------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    """From `start` yuan of cost above the deductible, each yuan is paid at `rate` (until the next tier)."""

    start: Decimal
    rate: Decimal


def check_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers or tiers[0].start != ZERO:
        raise RuleViolation("insurance.tiers_invalid", "the first tier starts at 0.00", "首档须从0元起")
    for a, b in itertools.pairwise(tiers):
        if b.start <= a.start:
            raise RuleViolation("insurance.tiers_invalid", "tier starts must increase", "分档起点须递增")
    if any(not (ZERO <= t.rate <= 1) for t in tiers):
        raise RuleViolation("insurance.tiers_invalid", "tier rates lie between 0 and 1", "赔付比例须在0与1之间")


def tiered_amount(out_of_pocket: Decimal, deductible: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Σ over the tiers of (the part of the cost above the deductible in that tier × its rate), half-up
    to the fen once at the end."""
    base = max(out_of_pocket - deductible, ZERO)
    total = Decimal(0)
    for i, tier in enumerate(tiers):
        upper = tiers[i + 1].start if i + 1 < len(tiers) else None
        if base <= tier.start:
            break
        part = (min(base, upper) if upper is not None else base) - tier.start
        total += part * tier.rate
    return round_fen(total)


def payout(out_of_pocket: Decimal, deductible: Decimal, tiers: Sequence[Tier], *, cap: Decimal,
           paid_this_year: Decimal) -> Decimal:
    """The tiered amount, limited by what is left of the person's annual cap."""
    return min(tiered_amount(out_of_pocket, deductible, tiers), max(cap - paid_this_year, ZERO))


def per_person(total: Decimal, persons: int) -> Decimal | None:
    """Average paid per aided person, half-up to the fen (¥1,907,500 ÷ 258 = ¥7,393.41)."""
    return round_fen(total / persons) if persons else None
