"""Pure rules of the repayment-rate assessment (第九条): bands from exact fractions, quota changes.

"贷款回收率达95%以上的乡镇,可增加下年度放贷指标,并给予一定的奖励;贷款回收率低于90%的,削减下年度放贷
指标,不安排工作经费。" Rates are compared as exact fractions recovered/due, never as rounded
percentages: 94.996% is not 95%.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

from fupin.money import round_fen

RATE_PLACES = Decimal("0.000001")


class Band(StrEnum):
    reward = "reward"  # ≥ reward threshold: quota up, reward, working funds
    standard = "standard"  # penalty threshold ≤ rate < reward threshold
    penalty = "penalty"  # < penalty threshold: quota cut, no working funds
    no_loans_due = "no_loans_due"  # nothing fell due: neither 0% nor 100%


@dataclass(frozen=True)
class Policy:
    """Thresholds and quota changes of a county; defaults are the regulation's values."""

    reward_threshold: Decimal = Decimal("0.950000")
    penalty_threshold: Decimal = Decimal("0.900000")
    quota_increase: Decimal = Decimal("0.100000")
    quota_cut: Decimal = Decimal("0.100000")


DEFAULT_POLICY = Policy()


def band(recovered: Decimal, due: Decimal, policy: Policy = DEFAULT_POLICY) -> Band:
    if due <= 0:
        return Band.no_loans_due
    rate = Fraction(recovered) / Fraction(due)
    if rate >= Fraction(policy.reward_threshold):
        return Band.reward
    if rate >= Fraction(policy.penalty_threshold):
        return Band.standard
    return Band.penalty


def rate(recovered: Decimal, due: Decimal) -> Decimal | None:
    """The rate for display, half-up to six places (0.949960 = 94.996%); None when nothing fell due."""
    if due <= 0:
        return None
    return (recovered / due).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def quota_change(b: Band, policy: Policy = DEFAULT_POLICY) -> Decimal:
    """Signed fraction by which next year's quota moves."""
    if b is Band.reward:
        return policy.quota_increase
    if b is Band.penalty:
        return -policy.quota_cut
    return Decimal("0")


def proposed_quota(current: Decimal, b: Band, policy: Policy = DEFAULT_POLICY) -> Decimal:
    return round_fen(current * (1 + quota_change(b, policy)))


def working_funds_eligible(b: Band) -> bool:
    return b is not Band.penalty


def rewarded(b: Band) -> bool:
    return b is Band.reward
