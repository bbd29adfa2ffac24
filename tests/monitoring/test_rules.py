"""Pure rules at their exact boundaries, with values computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fupin.errors import RuleViolation
from fupin.monitoring import rules
from fupin.monitoring.rules import DEFAULT_RULES, MonitoringRules, Tier

D = Decimal
ALL_OK = dict.fromkeys(rules.LIVING_CHECKS, True)
# A tier table that reproduces the seed's leukaemia case (003 L241): out of pocket ¥268,010.10 → ¥181,209.09.
SEED_TIERS = [Tier(D("0"), D("0.30")), Tier(D("40000"), D("0.60")), Tier(D("100000"), D("0.90"))]


class TestIncomeRule:
    def test_below_the_line_is_a_risk_at_the_line_is_not(self):
        assert rules.income_at_risk(D("5999.99"), DEFAULT_RULES)
        assert not rules.income_at_risk(D("6000.00"), DEFAULT_RULES)

    def test_the_line_is_the_countys(self):
        assert rules.income_at_risk(D("6499.99"), MonitoringRules(income_line=D("6500.00")))


class TestExpenseRule:
    def test_exactly_half_the_annual_income_is_not_a_risk_one_fen_more_is(self):
        # 3 persons × ¥6,000.00 = ¥18,000.00 a year; half is ¥9,000.00.
        assert rules.expense_threshold(D("6000.00"), 3, DEFAULT_RULES) == D("9000.00")
        assert not rules.expense_at_risk(D("9000.00"), D("6000.00"), 3, DEFAULT_RULES)
        assert rules.expense_at_risk(D("9000.01"), D("6000.00"), 3, DEFAULT_RULES)

    def test_the_threshold_is_exact_not_rounded(self):
        # 0.5 × ¥3,333.33 × 1 = ¥1,666.665: ¥1,666.67 is above it, ¥1,666.66 is not.
        assert rules.expense_threshold(D("3333.33"), 1, DEFAULT_RULES) == D("1666.665")
        assert rules.expense_at_risk(D("1666.67"), D("3333.33"), 1, DEFAULT_RULES)
        assert not rules.expense_at_risk(D("1666.66"), D("3333.33"), 1, DEFAULT_RULES)

    def test_a_household_without_income_is_at_risk_from_any_expense(self):
        assert rules.expense_at_risk(D("0.01"), D("0"), 2, DEFAULT_RULES)
        assert not rules.expense_at_risk(D("0"), D("0"), 2, DEFAULT_RULES)

    def test_verification_finds_each_rule_and_each_gap(self):
        f = rules.assess(income_per_capita=D("6000.00"), persons=3, medical_expense=D("9000.00"),
                         disaster_loss=D("9000.01"), checks={**ALL_OK, "drinking_water": False}, rules=DEFAULT_RULES)
        assert (f.income_risk, f.expense_risk, f.gaps, f.at_risk) == (False, True, ("drinking_water",), True)
        calm = rules.assess(income_per_capita=D("6000.00"), persons=3, medical_expense=D("9000.00"),
                            disaster_loss=D("0"), checks=ALL_OK, rules=DEFAULT_RULES)
        assert not calm.at_risk
        assert rules.gaps({"food": True}) == list(rules.LIVING_CHECKS[1:])  # unreported counts as a gap


class TestEliminationRule:
    def test_six_months_above_the_line_to_the_day(self):
        kw = {"income_per_capita": D("6000.01"), "stable_since": date(2026, 1, 15), "checks": ALL_OK,
              "rules": DEFAULT_RULES}
        assert rules.elimination_refusals(on=date(2026, 7, 15), **kw) == []
        assert rules.elimination_refusals(on=date(2026, 7, 14), **kw) == ["not_long_enough_above_line"]

    def test_month_ends_clamp(self):
        # From 31 August, six months end on the last day of February.
        kw = {"income_per_capita": D("7000"), "stable_since": date(2025, 8, 31), "checks": ALL_OK,
              "rules": DEFAULT_RULES}
        assert rules.elimination_refusals(on=date(2026, 2, 28), **kw) == []
        assert rules.elimination_refusals(on=date(2026, 2, 27), **kw) == ["not_long_enough_above_line"]

    def test_at_the_line_is_not_above_it_and_a_gap_blocks(self):
        refusals = rules.elimination_refusals(income_per_capita=D("6000.00"), stable_since=date(2025, 1, 1),
                                              on=date(2026, 7, 1), checks={**ALL_OK, "housing_safety": False},
                                              rules=DEFAULT_RULES)
        assert refusals == ["income_not_above_line", "living_condition_gap"]


class TestInsurancePayout:
    def test_the_seed_leukaemia_case_to_the_fen(self):
        # After a ¥20,000.00 deductible: 40,000 × 30% + 60,000 × 60% + 148,010.10 × 90%
        # = 12,000.00 + 36,000.00 + 133,209.09 = 181,209.09
        assert rules.tiered_amount(D("268010.10"), D("20000.00"), SEED_TIERS) == D("181209.09")

    def test_tier_boundaries(self):
        assert rules.tiered_amount(D("20000.00"), D("20000.00"), SEED_TIERS) == D("0.00")
        assert rules.tiered_amount(D("19999.99"), D("20000.00"), SEED_TIERS) == D("0.00")
        assert rules.tiered_amount(D("60000.00"), D("20000.00"), SEED_TIERS) == D("12000.00")
        assert rules.tiered_amount(D("60000.01"), D("20000.00"), SEED_TIERS) == D("12000.01")  # 0.006 → 0.01
        assert rules.tiered_amount(D("120000.00"), D("20000.00"), SEED_TIERS) == D("48000.00")

    def test_half_up_once_at_the_end(self):
        # 0.05 × 30% = 0.015 → 0.02 (half up), not 0.01
        assert rules.tiered_amount(D("20000.05"), D("20000.00"), SEED_TIERS) == D("0.02")

    def test_annual_cap_limits_what_is_left(self):
        cap = D("200000.00")
        assert rules.payout(D("268010.10"), D("20000"), SEED_TIERS, cap=cap, paid_this_year=D("0")) == D("181209.09")
        assert rules.payout(D("268010.10"), D("20000"), SEED_TIERS, cap=cap,
                            paid_this_year=D("181209.09")) == D("18790.91")
        assert rules.payout(D("268010.10"), D("20000"), SEED_TIERS, cap=cap, paid_this_year=D("250000")) == D("0.00")

    def test_tiers_must_start_at_zero_and_increase(self):
        with pytest.raises(RuleViolation):
            rules.check_tiers([Tier(D("100"), D("0.5"))])
        with pytest.raises(RuleViolation):
            rules.check_tiers([Tier(D("0"), D("0.5")), Tier(D("0"), D("0.6"))])
        with pytest.raises(RuleViolation):
            rules.check_tiers([Tier(D("0"), D("1.5"))])
        rules.check_tiers(SEED_TIERS)

    def test_average_per_person_is_the_seeds_shape(self):
        # 「救助258人,支付防贫保险金190.75万元,人均获取防贫救助资金达7300余元」
        assert rules.per_person(D("1907500.00"), 258) == D("7393.41")
        assert rules.per_person(D("0"), 0) is None

    @given(st.decimals(min_value=0, max_value=10**7, places=2), st.decimals(min_value=0, max_value=10**5, places=2))
    def test_payout_never_exceeds_the_cost_above_the_deductible_and_grows_with_it(self, cost, more):
        a = rules.tiered_amount(cost, D("20000"), SEED_TIERS)
        b = rules.tiered_amount(cost + more, D("20000"), SEED_TIERS)
        assert D("0") <= a <= max(cost - D("20000"), D("0"))
        assert a <= b
