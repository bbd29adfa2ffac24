from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fupin.dividends import rules
from fupin.dividends.rules import Period, PoolModel
from fupin.errors import RuleViolation

YEAR_2017 = rules.parse_period("2017")


class TestEntitlement:
    def test_reference_case_28_households_72_persons_at_3_percent(self):
        # 001 L41/L61: 72 persons × ¥50,000 = ¥3,600,000; × 3% = ¥108,000; ¥1,500 a person.
        persons = [3] * 16 + [2] * 12  # 48 + 24 = 72 persons in 28 households
        assert len(persons) == 28
        assert sum(persons) == 72
        amounts = [
            rules.entitlement(model=PoolModel.rate, amount=Decimal(50_000 * n), rate=Decimal("0.03"),
                              fixed_amount=None, held=365, period_days=365)
            for n in persons
        ]
        assert sum(amounts) == Decimal("108000.00")
        for n, a in zip(persons, amounts, strict=True):
            assert a == Decimal(1500 * n)
            assert rules.per_person(a, n) == [Decimal("1500.00")] * n

    def test_mid_year_rate_holding_is_pro_rated_by_days(self):
        # ¥100,000 held from 2026-07-01 to 31 Dec: 184 of 365 days; 100,000 × 0.03 × 184 / 365 = 1512.328… → 1512.33
        period = rules.parse_period("2026")
        held = rules.days_held(period, date(2026, 7, 1), date(2029, 6, 30))
        assert held == 184
        assert rules.entitlement(model=PoolModel.rate, amount=Decimal("100000"), rate=Decimal("0.03"),
                                 fixed_amount=None, held=held, period_days=period.days) == Decimal("1512.33")

    def test_fixed_share_pro_rated_in_first_year(self):
        # ¥1,000 a year from 2026-03-15: 292 of 365 days → 800.0000 → 800.00; from 2026-10-01: 92 days → 252.05
        period = rules.parse_period("2026")
        assert rules.days_held(period, date(2026, 3, 15), date(2029, 3, 14)) == 292
        assert rules.entitlement(model=PoolModel.fixed, amount=Decimal("10000"), rate=None,
                                 fixed_amount=Decimal("1000"), held=292, period_days=365) == Decimal("800.00")
        assert rules.entitlement(model=PoolModel.fixed, amount=Decimal("10000"), rate=None,
                                 fixed_amount=Decimal("1000"), held=92, period_days=365) == Decimal("252.05")

    def test_half_fen_rounds_up(self):
        # an exact half fen: 1000 × 0.001 × 1 / 8 = 0.125 → 0.13
        assert rules.entitlement(model=PoolModel.rate, amount=Decimal("1000"), rate=Decimal("0.001"),
                                 fixed_amount=None, held=1, period_days=8) == Decimal("0.13")

    def test_no_overlap_pays_nothing(self):
        assert rules.days_held(YEAR_2017, date(2018, 1, 1), date(2020, 12, 31)) == 0
        assert rules.entitlement(model=PoolModel.fixed, amount=Decimal(1), rate=None, fixed_amount=Decimal(1000),
                                 held=0, period_days=365) == Decimal("0")


class TestPeriods:
    def test_year_and_range(self):
        assert rules.parse_period("2024") == Period("2024", date(2024, 1, 1), date(2024, 12, 31))
        assert rules.parse_period("2024").days == 366
        p = rules.parse_period("2026-01-01..2026-06-30")
        assert (p.start, p.end, p.days) == (date(2026, 1, 1), date(2026, 6, 30), 181)

    @pytest.mark.parametrize("bad", ["26", "2026-13-01..2026-12-31", "2026-06-30..2026-01-01", "2026-01-01..2028-01-01", "x"])
    def test_bad_periods_are_refused(self, bad):
        with pytest.raises(RuleViolation):
            rules.parse_period(bad)

    def test_contract_end(self):
        assert rules.contract_end(date(2026, 1, 1), 3) == date(2028, 12, 31)
        assert rules.contract_end(date(2024, 2, 29), 3) == date(2027, 2, 28)


class TestSplit:
    @given(
        total=st.integers(min_value=0, max_value=10**10).map(lambda f: Decimal(f) / 100),
        persons=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=60),
    )
    def test_parts_sum_exactly_and_stay_within_a_fen_of_exact(self, total, persons):
        parts = rules.split_by_persons(total, persons)
        assert sum(parts) == total
        weight = sum(persons)
        for p, n in zip(parts, persons, strict=True):
            assert abs(p - total * n / weight) < Decimal("0.01")

    @given(
        total=st.integers(min_value=0, max_value=10**9).map(lambda f: Decimal(f) / 100),
        n=st.integers(min_value=1, max_value=15),
    )
    def test_per_person_split_is_exact_and_deterministic(self, total, n):
        parts = rules.per_person(total, n)
        assert sum(parts) == total
        assert max(parts) - min(parts) <= Decimal("0.01")
        assert parts == sorted(parts, reverse=True)  # leftover fen go to the earliest persons
        assert parts == rules.per_person(total, n)
