"""Entitlement arithmetic: hand-computed cases and properties against a day-by-day reference."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fupin.subsidies.rules import Repayment, entitlement, expected

D = Decimal


def ent(principal: str, reps: list[tuple[date, str]], *, due: date = date(2026, 12, 31),
        disbursed: date = date(2026, 1, 10), productive: bool = True, rate: str = "0.0258") -> Decimal:
    return entitlement(
        principal=D(principal), disbursed_on=disbursed, due_on=due, productive=productive, rate=D(rate),
        repayments=[Repayment(p, D(a)) for p, a in reps],
    ).amount


@pytest.mark.parametrize(
    ("principal", "reps", "amount"),
    [
        # 20,000 × 2.58% × 181/365 = 93,396/365 = 255.879… → 255.88 (Jan 10 counted, Jul 10 not)
        ("20000.00", [(date(2026, 7, 10), "20000.00")], "255.88"),
        # repaid 2027-01-04, after the 2026-12-31 due date: late, nothing
        ("20000.00", [(date(2027, 1, 4), "20000.00")], "0.00"),
        # repaid on the due date: 355 days → 20,000 × 0.0258 × 355/365 = 501.86301… → 501.86
        ("20000.00", [(date(2026, 12, 31), "20000.00")], "501.86"),
        # partial: 10,000 on 2026-04-10 (90 days) + 10,000 on 2026-07-10 (181 days)
        # (900,000 + 1,810,000) × 0.0258 / 365 = 69,918/365 = 191.556… → 191.56
        ("20000.00", [(date(2026, 4, 10), "10000.00"), (date(2026, 7, 10), "10000.00")], "191.56"),
        # partial on time but the last part late: the whole loan is late
        ("20000.00", [(date(2026, 4, 10), "10000.00"), (date(2027, 1, 2), "10000.00")], "0.00"),
        # not fully repaid yet: nothing
        ("20000.00", [(date(2026, 4, 10), "10000.00")], "0.00"),
        # repaid the day it was disbursed: 0 days
        ("20000.00", [(date(2026, 1, 10), "20000.00")], "0.00"),
        # ¥5,000 for 30 days: 5,000 × 0.0258 × 30 / 365 = 3,870/365 = 10.6027… → 10.60
        ("5000.00", [(date(2026, 2, 9), "5000.00")], "10.60"),
        # repaid after 30 days, reversed on day 50, repaid again on day 100: outstanding 30 + 50 = 80 days
        # 1,000 × 0.0258 × 80 / 365 = 2,064/365 = 5.6547… → 5.65
        ("1000.00", [(date(2026, 2, 9), "1000.00"), (date(2026, 3, 1), "-1000.00"), (date(2026, 4, 20), "1000.00")],
         "5.65"),
    ],
)
def test_hand_computed(principal: str, reps: list[tuple[date, str]], amount: str) -> None:
    assert ent(principal, reps) == D(amount)


def test_non_productive_earns_nothing() -> None:
    assert ent("20000.00", [(date(2026, 7, 10), "20000.00")], productive=False) == D("0")


def test_half_up_rounding_at_exactly_half_a_fen() -> None:
    # ¥0.73 for 2 days at 125%: 0.73 × 2 × 1.25 / 365 = 1.825 / 365 = 0.005 exactly → half-up → 0.01
    assert ent("0.73", [(date(2026, 1, 12), "0.73")], rate="1.25") == D("0.01")


def test_expected_is_the_full_term_figure() -> None:
    assert expected(principal=D("20000.00"), disbursed_on=date(2026, 1, 10), due_on=date(2026, 12, 31),
                    rate=D("0.0258")) == D("501.86")


def reference(principal: Decimal, disbursed: date, reps: list[tuple[int, Decimal]], rate: Decimal) -> Decimal:
    """Day by day: the outstanding principal of each day in [disbursed, repaid), summed."""
    last = max(d for d, _ in reps)
    total = Decimal(0)
    for day in range(last):
        total += principal - sum((a for d, a in reps if d <= day), Decimal(0))
    return (total * rate / 365).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


money = st.integers(min_value=1, max_value=20_000_000).map(lambda f: Decimal(f) / 100)
rates = st.integers(min_value=1, max_value=100_000).map(lambda r: Decimal(r) / 1_000_000)


@st.composite
def loans(draw: st.DrawFn) -> tuple[Decimal, int, list[tuple[int, Decimal]], Decimal]:
    principal = draw(money)
    term = draw(st.integers(min_value=1, max_value=366))
    parts = draw(st.integers(min_value=1, max_value=4))
    cents = int(principal * 100)
    cuts = sorted(draw(st.lists(st.integers(0, cents), min_size=parts - 1, max_size=parts - 1)))
    amounts = [Decimal(b - a) / 100 for a, b in zip([0, *cuts], [*cuts, cents], strict=True)]
    days = sorted(draw(st.lists(st.integers(0, term + 10), min_size=parts, max_size=parts)))
    reps = [(d, a) for d, a in zip(days, amounts, strict=True) if a > 0]
    return principal, term, reps, draw(rates)


@settings(max_examples=300, deadline=None)
@given(loans(), st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
def test_properties(loan: tuple[Decimal, int, list[tuple[int, Decimal]], Decimal], start: date) -> None:
    principal, term, reps, rate = loan
    due = start + timedelta(days=term)
    result = entitlement(
        principal=principal, disbursed_on=start, due_on=due, productive=True, rate=rate,
        repayments=[Repayment(start + timedelta(days=d), a) for d, a in reps],
    )
    assert result.amount >= 0
    cap = (principal * rate * term / 365).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert result.amount <= cap
    last = max(d for d, _ in reps)
    if last > term:
        assert result.amount == 0
        assert result.reason == "late"
    else:
        assert result.amount == reference(principal, start, reps, rate)


@settings(max_examples=200, deadline=None)
@given(money, rates, st.integers(0, 364), st.integers(0, 364))
def test_monotone_in_days(principal: Decimal, rate: Decimal, a: int, b: int) -> None:
    start, due = date(2026, 1, 1), date(2026, 12, 31)
    short, long_ = sorted((a, b))

    def amount(days: int) -> Decimal:
        return entitlement(principal=principal, disbursed_on=start, due_on=due, productive=True, rate=rate,
                           repayments=[Repayment(start + timedelta(days=days), principal)]).amount

    assert amount(short) <= amount(long_)
