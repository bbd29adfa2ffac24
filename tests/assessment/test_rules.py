from __future__ import annotations

from decimal import Decimal

import pytest

from fupin.assessment import rules
from fupin.assessment.rules import Band, Policy


class TestBand:
    @pytest.mark.parametrize(
        ("recovered", "due", "expected"),
        [
            ("9500.00", "10000.00", Band.reward),  # exactly 95.00%
            ("9499.00", "10000.00", Band.standard),  # 94.99%
            ("94996.00", "100000.00", Band.standard),  # 94.996% is not 95%
            ("9000.00", "10000.00", Band.standard),  # exactly 90.00%
            ("8999.00", "10000.00", Band.penalty),  # 89.99%
            ("10000.00", "10000.00", Band.reward),
            ("0.00", "10000.00", Band.penalty),
            ("0.00", "0.00", Band.no_loans_due),
        ],
    )
    def test_bands_at_the_boundaries(self, recovered: str, due: str, expected: Band) -> None:
        assert rules.band(Decimal(recovered), Decimal(due)) is expected

    def test_a_rate_that_rounds_to_95_percent_is_still_standard(self) -> None:
        # 18999.99 / 20000 = 94.99995% rounds to 0.950000 at six places but is below 95%
        assert rules.rate(Decimal("18999.99"), Decimal("20000.00")) == Decimal("0.950000")
        assert rules.band(Decimal("18999.99"), Decimal("20000.00")) is Band.standard

    def test_county_policy_moves_the_thresholds(self) -> None:
        strict = Policy(Decimal("0.980000"), Decimal("0.950000"), Decimal("0.200000"), Decimal("0.150000"))
        assert rules.band(Decimal("9700.00"), Decimal("10000.00"), strict) is Band.standard
        assert rules.band(Decimal("9400.00"), Decimal("10000.00"), strict) is Band.penalty


class TestRateAndQuota:
    def test_rate_is_none_when_nothing_fell_due(self) -> None:
        assert rules.rate(Decimal("0.00"), Decimal("0.00")) is None

    def test_rate_rounds_half_up_to_six_places(self) -> None:
        assert rules.rate(Decimal("94996.00"), Decimal("100000.00")) == Decimal("0.949960")
        assert rules.rate(Decimal("2.00"), Decimal("3.00")) == Decimal("0.666667")

    def test_quota_moves_by_band(self) -> None:
        assert rules.proposed_quota(Decimal("1000000.00"), Band.reward) == Decimal("1100000.00")
        assert rules.proposed_quota(Decimal("1000000.00"), Band.penalty) == Decimal("900000.00")
        assert rules.proposed_quota(Decimal("1000000.00"), Band.standard) == Decimal("1000000.00")
        assert rules.proposed_quota(Decimal("333333.35"), Band.reward) == Decimal("366666.69")  # 366666.685 half-up

    def test_working_funds_only_withheld_for_penalty(self) -> None:
        assert [rules.working_funds_eligible(b) for b in Band] == [True, True, False, True]
        assert [rules.rewarded(b) for b in Band] == [True, False, False, False]
