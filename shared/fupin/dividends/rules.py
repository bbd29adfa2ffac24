"""Pure dividend arithmetic: entitlement per holding, periods, and exact per-person splits.

The SQL of a run (`fupin.dividends.jobs`) computes the same figures set-based; a test keeps the two
equal to the fen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from fupin.errors import RuleViolation
from fupin.money import ZERO, round_fen, split_exact


class PoolModel(StrEnum):
    rate = "rate"  # 特惠贷 pooled model: a yearly rate on the invested amount (001 L41)
    fixed = "fixed"  # cooperative share model: a fixed amount per household per year (002 L23)


class OperatorKind(StrEnum):
    company = "company"
    cooperative = "cooperative"


class HoldingStatus(StrEnum):
    active = "active"
    matured = "matured"
    renewed = "renewed"
    redeemed = "redeemed"
    redeemed_in_kind = "redeemed_in_kind"


# A run pays these; a matured holding is still owed its days up to the contract end.
PAYABLE = (HoldingStatus.active.value, HoldingStatus.renewed.value, HoldingStatus.matured.value)
# Renewal and redemption are decisions on a contract that has not ended yet.
OPEN = PAYABLE
CLOSED = (HoldingStatus.redeemed.value, HoldingStatus.redeemed_in_kind.value)


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def parse_period(text: str) -> Period:
    """A year ("2026": 1 Jan – 31 Dec) or an inclusive date range ("2026-01-01..2026-06-30")."""
    if m := _YEAR.match(text):
        year = int(m.group(1))
        if year < 2000 or year > 2100:
            raise _bad_period(text)
        return Period(text, date(year, 1, 1), date(year, 12, 31))
    if m := _RANGE.match(text):
        try:
            start, end = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError as exc:
            raise _bad_period(text) from exc
        if end < start or (end - start).days > 366:
            raise _bad_period(text)
        return Period(text, start, end)
    raise _bad_period(text)


def _bad_period(text: str) -> RuleViolation:
    return RuleViolation(
        "dividend.bad_period",
        f"period {text!r} must be a year (2026) or a range of at most a year (2026-01-01..2026-06-30)",
        f"期间 {text!r} 必须是年份(2026)或不超过一年的日期区间(2026-01-01..2026-06-30)",
    )


def contract_end(start: date, term_years: int) -> date:
    """Last day of a contract of `term_years` starting on `start` (29 Feb starts end on 28 Feb)."""
    try:
        anniversary = start.replace(year=start.year + term_years)
    except ValueError:  # 29 February
        anniversary = date(start.year + term_years, 3, 1)
    return anniversary - timedelta(days=1)


def days_held(period: Period, start: date, end: date) -> int:
    """Days of the period the holding covers, both ends inclusive (0 when they do not overlap)."""
    first = max(period.start, start)
    last = min(period.end, end)
    return max((last - first).days + 1, 0)


def entitlement(
    *, model: PoolModel, amount: Decimal, rate: Decimal | None, fixed_amount: Decimal | None,
    held: int, period_days: int,
) -> Decimal:
    """One holding's dividend for one period, rounded half-up to the fen.

    rate model: rate × amount × days held ÷ days in period (R-TH-02, 3% of the invested amount a year);
    fixed model: the fixed amount × days held ÷ days in period (R-CS-02, ¥1,000 a household a year),
    pro-rated by days held in a part period (domain-detail §11 Q4/Q5).
    """
    if held <= 0:
        return ZERO
    if model is PoolModel.rate:
        assert rate is not None
        return round_fen(rate * amount * held / period_days)
    assert fixed_amount is not None
    return round_fen(fixed_amount * held / period_days)


def per_person(total: Decimal, persons: int) -> list[Decimal]:
    """Split a household's (or a pool's) total among `persons` equally, exactly to the fen."""
    if persons <= 0:
        return []
    return split_exact(total, [Decimal(1)] * persons)


def split_by_persons(total: Decimal, persons: list[int]) -> list[Decimal]:
    """Split a pool total among households in proportion to their persons; the parts sum to the total."""
    return split_exact(total, [Decimal(p) for p in persons])


def holding_actions(status: str, may_manage: bool) -> list[str]:
    """What may be done next with a holding: renew or redeem it while it is open (service._holding_for_update)."""
    return ["renew", "redeem"] if may_manage and status in OPEN else []
