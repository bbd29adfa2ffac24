"""Q38: enterprise loans (农业产业化) are county-level; they count in no township's repayment rate, band,
quota proposal or early-warning list, however overdue they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from fupin.assessment import service
from fupin.assessment.models import QuotaProposal
from fupin.auth.principal import SYSTEM
from fupin.auth.roles import Role
from fupin.loans.models import Loan
from tests.assessment.factories import make_loan, set_quota
from tests.assessment.test_service import _checks, _run
from tests.factories import new_county, token_for

Y = 2025


async def _enterprise_loan(sm, township: str, principal: str, due_on: date) -> None:
    async with sm() as session, session.begin():
        session.add(Loan(area_code=township, township_code=township, enterprise_name="县茶叶加工有限公司",
                         product="enterprise", purpose="other_farming", productive=True, principal=Decimal(principal),
                         outstanding=Decimal(principal), interest_rate=Decimal("0.058000"),
                         disbursed_on=date(due_on.year - 1, due_on.month, 1), due_on=due_on, status="overdue",
                         coop_code="county-union"))


async def _county(sm):
    county = await new_county(sm, townships=2, villages=1)
    t0 = county.townships[0]
    await make_loan(sm, village=county.villages[t0][0], principal="10000.00", due_on=date(Y, 6, 30),
                    repayments=[("10000.00", date(Y, 6, 30))])
    await _enterprise_loan(sm, t0, "500000.00", date(Y, 5, 31))  # never repaid
    return county, t0


class TestEnterpriseLoans:
    async def test_the_annual_check_and_quota_proposal_leave_them_out(self, owner_sessionmaker):
        county, t0 = await _county(owner_sessionmaker)
        await set_quota(owner_sessionmaker, township=t0, year=Y, amount="1000000.00")
        key = f"test:{county.code}:enterprise"
        result = await _run(owner_sessionmaker, county.code, key)
        assert result["loans"] == 1
        check = (await _checks(owner_sessionmaker, key))[t0]
        assert (check.principal_due, check.principal_recovered, check.band, check.loans_due, check.loans_overdue) == (
            Decimal("10000.00"), Decimal("10000.00"), "reward", 1, 0)
        async with owner_sessionmaker() as session, session.begin():
            behind = await service.check_loans(session, principal=SYSTEM, check_id=check.id)
            assert [loan.principal for loan in behind] == [Decimal("10000.00")]  # the enterprise loan is not there
            await service.propose_quotas(session, job_key=key, assessed_year=Y)
        async with owner_sessionmaker() as session:
            proposal = await session.scalar(select(QuotaProposal).where(QuotaProposal.area_code == t0,
                                                                        QuotaProposal.year == Y + 1))
        assert proposal is not None
        assert (proposal.band, proposal.proposed_quota) == ("reward", Decimal("1100000.00"))

    async def test_the_early_warning_leaves_them_out(self, client, owner_sessionmaker, test_settings):
        county, t0 = await _county(owner_sessionmaker)
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        rep = (await client.get("/reports/repayment-risk", headers=office,
                                params={"area_code": county.code, "as_of": f"{Y}-12-01"})).json()
        assert (rep["principal_due"], rep["principal_recovered"], rep["band"]) == ("10000.00", "10000.00", "reward")
        first = next(t for t in rep["ranking"] if t["area_code"] == t0)
        assert (first["loans_due"], first["loans_overdue"], first["rate"]) == (1, 0, "1.000000")
        assert rep["at_risk"] == []
