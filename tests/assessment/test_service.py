from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from fupin.assessment import service
from fupin.assessment.models import RepaymentCheck
from fupin.auth.principal import SYSTEM
from tests.assessment.factories import make_loan, repay
from tests.factories import new_county

Y = 2025


async def _checks(sm, key: str) -> dict[str, RepaymentCheck]:
    async with sm() as session:
        rows = (await session.scalars(select(RepaymentCheck).where(RepaymentCheck.job_key == key))).all()
    return {r.area_code: r for r in rows}


async def _run(sm, county: str, key: str, *, start: date = date(Y, 1, 1), end: date = date(Y, 12, 31),
               as_of: date = date(Y, 12, 31)) -> dict:
    async with sm() as session, session.begin():
        return await service.run_checks(
            session, area_code=county, kind="manual", period_start=start, period_end=end, as_of=as_of, job_key=key
        )


class TestRunChecks:
    async def test_rate_counts_partial_repayments_by_amount_and_ignores_later_ones(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=3, villages=2)
        t0, t1, t2 = county.townships
        v0a, v0b = county.villages[t0]
        # t0: due 30,000 in the period; recovered 10,000 + 8,000 (partial) + 9,000 by Dec 31
        await make_loan(owner_sessionmaker, village=v0a, principal="10000.00", due_on=date(Y, 3, 31),
                        repayments=[("10000.00", date(Y, 3, 30))])
        await make_loan(owner_sessionmaker, village=v0b, principal="10000.00", due_on=date(Y, 6, 30),
                        repayments=[("5000.00", date(Y, 5, 1)), ("3000.00", date(Y, 6, 30)),
                                    ("2000.00", date(Y + 1, 1, 2))])  # the last is after the as-of date
        await make_loan(owner_sessionmaker, village=v0a, principal="10000.00", due_on=date(Y, 12, 31),
                        repayments=[("9000.00", date(Y, 12, 31))])
        # not due in the period: neither counts
        await make_loan(owner_sessionmaker, village=v0a, principal="50000.00", due_on=date(Y + 1, 1, 1))
        await make_loan(owner_sessionmaker, village=v0a, principal="50000.00", due_on=date(Y - 1, 12, 31))
        # t1: 19,000 of 20,000 = 95.00% exactly
        v1 = county.villages[t1][0]
        await make_loan(owner_sessionmaker, village=v1, principal="12000.00", due_on=date(Y, 4, 1),
                        repayments=[("12000.00", date(Y, 4, 1))])
        await make_loan(owner_sessionmaker, village=v1, principal="8000.00", due_on=date(Y, 9, 1),
                        repayments=[("7000.00", date(Y, 9, 1))])
        # t2: nothing due
        key = f"test:{county.code}:partial"
        result = await _run(owner_sessionmaker, county.code, key)
        assert result["checks"] == 3
        assert result["loans"] == 5
        checks = await _checks(owner_sessionmaker, key)
        c0 = checks[t0]
        assert (c0.principal_due, c0.principal_recovered) == (Decimal("30000.00"), Decimal("27000.00"))
        assert c0.rate == Decimal("0.900000")
        assert c0.band == "standard"
        assert (c0.loans_due, c0.loans_recovered, c0.loans_overdue) == (3, 1, 2)
        c1 = checks[t1]
        assert (c1.principal_due, c1.principal_recovered, c1.rate, c1.band) == (
            Decimal("20000.00"), Decimal("19000.00"), Decimal("0.950000"), "reward")
        c2 = checks[t2]
        assert (c2.principal_due, c2.principal_recovered, c2.rate, c2.band, c2.loans_due) == (
            Decimal("0.00"), Decimal("0.00"), None, "no_loans_due", 0)
        assert c0.reward_threshold == Decimal("0.950000")
        assert c0.policy_id is None

    @pytest.mark.parametrize(
        ("principal", "repaid", "band"),
        [
            ("10000.00", "9500.00", "reward"),  # 95.00%
            ("10000.00", "9499.00", "standard"),  # 94.99%
            ("100000.00", "94996.00", "standard"),  # 94.996%
            ("20000.00", "18999.99", "standard"),  # 94.99995%, rounds to 0.950000
            ("10000.00", "9000.00", "standard"),  # 90.00%
            ("10000.00", "8999.00", "penalty"),  # 89.99%
        ],
    )
    async def test_sql_bands_compare_exact_fractions(self, owner_sessionmaker, principal, repaid, band):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v = county.villages[county.townships[0]][0]
        await make_loan(owner_sessionmaker, village=v, principal=principal, due_on=date(Y, 5, 1),
                        repayments=[(repaid, date(Y, 5, 1))])
        key = f"test:{county.code}:band"
        await _run(owner_sessionmaker, county.code, key)
        assert (await _checks(owner_sessionmaker, key))[county.townships[0]].band == band

    async def test_a_late_repayment_does_not_change_an_existing_check(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        t = county.townships[0]
        v = county.villages[t][0]
        loan = await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 6, 30),
                               repayments=[("8000.00", date(Y, 6, 30))])
        key = f"test:{county.code}:late"
        await _run(owner_sessionmaker, county.code, key, end=date(Y, 6, 30), as_of=date(Y, 6, 30))
        await repay(owner_sessionmaker, loan_id=loan, village=v, amount="2000.00", on=date(Y, 7, 3))
        # a rerun of the same key writes nothing, the stored check keeps its figures and the loans behind it
        again = await _run(owner_sessionmaker, county.code, key, end=date(Y, 6, 30), as_of=date(Y, 6, 30))
        assert again == {"checks": 0, "loans": 0, "policy_id": "default"}
        check = (await _checks(owner_sessionmaker, key))[t]
        assert (check.principal_recovered, check.band, check.loans_overdue) == (Decimal("8000.00"), "penalty", 1)
        # a repayment recorded after the check, even one dated inside the period, is not among its inputs
        await repay(owner_sessionmaker, loan_id=loan, village=v, amount="1000.00", on=date(Y, 6, 29))
        async with owner_sessionmaker() as session, session.begin():
            behind = await service.check_loans(session, principal=SYSTEM, check_id=check.id)
        assert [(b.loan_id, b.recovered, b.overdue) for b in behind] == [(loan, Decimal("8000.00"), True)]
        # a later check as of July 31 sees the late repayment
        later = f"test:{county.code}:late2"
        await _run(owner_sessionmaker, county.code, later, end=date(Y, 6, 30), as_of=date(Y, 7, 31))
        assert (await _checks(owner_sessionmaker, later))[t].principal_recovered == Decimal("10000.00")

    async def test_checks_refuse_update_and_delete(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        key = f"test:{county.code}:immutable"
        await _run(owner_sessionmaker, county.code, key)
        for sql in ("UPDATE repayment_check SET band = 'reward' WHERE job_key = :k",
                    "DELETE FROM repayment_check WHERE job_key = :k"):
            with pytest.raises(DBAPIError):
                async with owner_sessionmaker() as session, session.begin():
                    await session.execute(text(sql), {"k": key})

    async def test_reversal_subtracts_and_loans_not_yet_due_by_as_of_are_left_out(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        t = county.townships[0]
        v = county.villages[t][0]
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 3, 1),
                        repayments=[("10000.00", date(Y, 3, 1)), ("-1000.00", date(Y, 3, 5))])
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 11, 1))
        key = f"test:{county.code}:ytd"
        await _run(owner_sessionmaker, county.code, key, as_of=date(Y, 6, 30))
        check = (await _checks(owner_sessionmaker, key))[t]
        assert (check.principal_due, check.principal_recovered, check.band) == (
            Decimal("10000.00"), Decimal("9000.00"), "standard")

    async def test_policy_in_force_at_period_end_is_used_and_recorded(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        t = county.townships[0]
        v = county.villages[t][0]
        await make_loan(owner_sessionmaker, village=v, principal="10000.00", due_on=date(Y, 3, 1),
                        repayments=[("9600.00", date(Y, 3, 1))])
        async with owner_sessionmaker() as session, session.begin():
            p = await service.create_policy(
                session, principal=SYSTEM, area_code=county.code, effective_from=date(Y, 1, 1),
                reward_threshold=Decimal("0.980000"), penalty_threshold=Decimal("0.950000"),
                quota_increase=Decimal("0.200000"), quota_cut=Decimal("0.150000"))
            await service.create_policy(
                session, principal=SYSTEM, area_code=county.code, effective_from=date(Y + 1, 1, 1),
                reward_threshold=Decimal("0.900000"), penalty_threshold=Decimal("0.800000"),
                quota_increase=Decimal("0.100000"), quota_cut=Decimal("0.100000"))
        key = f"test:{county.code}:policy"
        result = await _run(owner_sessionmaker, county.code, key)
        check = (await _checks(owner_sessionmaker, key))[t]
        assert result["policy_id"] == str(p.id)
        assert (check.policy_id, check.band, check.reward_threshold, check.quota_cut) == (
            p.id, "standard", Decimal("0.980000"), Decimal("0.150000"))
