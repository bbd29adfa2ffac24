from __future__ import annotations

from datetime import date

import pytest

from fupin.auth.roles import Role
from fupin.errors import RuleViolation
from fupin.households import rules

GOOD = "11010519491231002X"  # the GB 11643 example: check digit X


class TestIdNumbers:
    def test_good_number_derives_sex_and_birth_date(self):
        info = rules.parse_id(GOOD)
        assert (info.number, info.sex, info.birth_date) == (GOOD, "F", date(1949, 12, 31))

    def test_lowercase_x_is_normalised(self):
        assert rules.parse_id(GOOD.lower()).number == GOOD

    def test_male_from_odd_17th_digit(self):
        first = "52020119800517001"
        assert rules.parse_id(first + rules.check_digit(first)).sex == "M"

    @pytest.mark.parametrize(("raw", "code"), [
        ("110105194912310021", "member.id_check_digit"),
        ("110105194902300026", "member.id_birth_date"),  # 30 February
        ("110105203001010000", "member.id_birth_date"),  # born in the future
        ("110105491231002", "member.id_legacy_15"),
        ("１１０１０５１９４９１２３１００２X", "member.id_format"),  # full-width digits
        ("110105 1949123100", "member.id_format"),
        ("11010519491231002Y", "member.id_format"),
        ("000000194912310020", "member.id_region"),
    ])
    def test_bad_numbers_are_refused_with_their_code(self, raw, code):
        with pytest.raises(RuleViolation) as e:
            rules.parse_id(raw, today=date(2026, 11, 23))
        assert e.value.code == code

    def test_future_date_check_uses_today(self):
        first = "52020120261124001"
        with pytest.raises(RuleViolation):
            rules.parse_id(first + rules.check_digit(first), today=date(2026, 11, 23))

    def test_given_sex_or_birth_date_must_match(self):
        rules.check_member_identity(GOOD, sex="F", birth_date=date(1949, 12, 31))
        for kw in ({"sex": "M", "birth_date": None}, {"sex": None, "birth_date": date(1949, 12, 30)}):
            with pytest.raises(RuleViolation) as e:
                rules.check_member_identity(GOOD, **kw)
            assert e.value.code == "member.id_mismatch"


class TestMasking:
    def test_mask_shape(self):
        assert rules.mask_id("520201198005170011") == "5202**********0011"

    @pytest.mark.parametrize("role", list(Role))
    def test_only_credit_coop_and_poverty_office_see_full_numbers(self, role):
        shown = rules.shown_id(GOOD, role)
        if role in (Role.credit_coop, Role.poverty_office):
            assert shown == GOOD
        else:
            assert shown == "1101**********002X"


class TestWorkflowTable:
    def test_each_step_follows_the_previous_only(self):
        steps = rules.IDENTIFICATION
        for i in range(1, len(steps)):
            rules.check_transition(steps[i - 1], steps[i])
            for j in range(len(steps)):
                if j != i - 1:
                    with pytest.raises(RuleViolation):
                        rules.check_transition(steps[j], steps[i])

    def test_dynamic_management(self):
        rules.check_transition("registered", "exited")
        rules.check_transition("exited", "returned_to_poverty")
        rules.check_transition("returned_to_poverty", "exited")
        with pytest.raises(RuleViolation):
            rules.check_transition("applied", "exited")
        with pytest.raises(RuleViolation) as e:
            rules.check_transition("removed", "registered")
        assert e.value.code == "household.closed"
