"""Interest-subsidy arithmetic (贴息), pure: no I/O, Decimal only.

Day counting: the disbursement day counts, the repayment day does not, so a loan disbursed
2026-01-10 and repaid 2026-07-10 was outstanding 181 days. A repayment of `a` made on day `p`
therefore removes `a` from the outstanding principal for every day from `p` on, and the
principal-days of a loan are Σ a × (p − disbursed_on) over its repayments — the same sum the
settlement SQL computes. Subsidy = principal-days × rate ÷ 365, rounded half-up to the fen once,
per loan; paid only for productive loans repaid in full on or before the due date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fupin.money import ZERO, round_fen

DEFAULT_RATE = Decimal("0.025800")
DAY_BASIS = 365



class RunStatus(StrEnum):
    """A subsidy run's own status (its job has the worker's: job_run.status)."""

    pending = "pending"
    done = "done"


@dataclass(frozen=True)
class Repayment:
    paid_on: date
    amount: Decimal  # negative for a reversal of an earlier repayment


@dataclass(frozen=True)
class Entitlement:
    eligible: bool
    reason: str  # entitled | not_productive | late | not_repaid | zero_days
    days: int  # calendar days from disbursement to final repayment (0 if not repaid)
    principal_days: Decimal
    amount: Decimal


def principal_days(disbursed_on: date, repayments: Sequence[Repayment], *, until: date) -> Decimal:
    """Σ outstanding principal over days in [disbursed_on, until): each repayment counts up to its date."""
    total = ZERO
    for r in repayments:
        day = min(max(r.paid_on, disbursed_on), until)
        total += r.amount * (day - disbursed_on).days
    return total


def entitlement(
    *,
    principal: Decimal,
    disbursed_on: date,
    due_on: date,
    repayments: Sequence[Repayment],
    productive: bool,
    rate: Decimal = DEFAULT_RATE,
    productive_only: bool = True,
) -> Entitlement:
    """The subsidy one loan earns. Late or unpaid → 0; partial repayments reduce it."""
    if productive_only and not productive:
        return Entitlement(False, "not_productive", 0, ZERO, ZERO)
    repaid = sum((r.amount for r in repayments), ZERO)
    if repaid < principal or not repayments:
        return Entitlement(False, "not_repaid", 0, ZERO, ZERO)
    # The day the balance reached zero: the last repayment in date order after which Σ ≥ principal.
    running = ZERO
    repaid_on = None
    for r in sorted(repayments, key=lambda x: x.paid_on):
        running += r.amount
        if running < principal:
            repaid_on = None  # a reversal can reopen the loan
        elif repaid_on is None:
            repaid_on = r.paid_on
    assert repaid_on is not None
    days = max((repaid_on - disbursed_on).days, 0)
    if repaid_on > due_on:
        return Entitlement(False, "late", days, ZERO, ZERO)
    pd = principal_days(disbursed_on, repayments, until=due_on)
    amount = round_fen(pd * rate / DAY_BASIS) if pd > 0 else ZERO
    if amount <= 0:
        return Entitlement(False, "zero_days", days, pd, ZERO)
    return Entitlement(True, "entitled", days, pd, amount)


def expected(*, principal: Decimal, disbursed_on: date, due_on: date, rate: Decimal = DEFAULT_RATE) -> Decimal:
    """Subsidy a loan earns if repaid in full on its due date: the pre-allocation estimate."""
    return round_fen(principal * max((due_on - disbursed_on).days, 0) * rate / DAY_BASIS)
