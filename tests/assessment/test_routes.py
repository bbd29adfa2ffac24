from __future__ import annotations

from datetime import date

from sqlalchemy import select

from fupin import jobs
from fupin.assessment.jobs import annual_key
from fupin.auth.roles import Role
from fupin.loans.models import LoanQuota
from fupin_worker import runner
from tests.assessment.factories import make_loan, set_quota
from tests.factories import new_county, token_for

Y = 2025


async def _two_townships(sm):
    """t0: 27,000 of 30,000 (90.00%, standard, two overdue loans); t1: 19,000 of 20,000 (95.00%, reward)."""
    county = await new_county(sm, townships=3, villages=2)
    t0, t1, _ = county.townships
    v0, v0b = county.villages[t0]
    v1 = county.villages[t1][0]
    await make_loan(sm, village=v0, principal="10000.00", due_on=date(Y, 3, 31), repayments=[("10000.00", date(Y, 3, 30))])
    await make_loan(sm, village=v0b, principal="10000.00", due_on=date(Y, 6, 30),
                    repayments=[("5000.00", date(Y, 5, 1)), ("3000.00", date(Y, 6, 30))])
    await make_loan(sm, village=v0, principal="10000.00", due_on=date(Y, 11, 30), repayments=[("9000.00", date(Y, 11, 30))])
    await make_loan(sm, village=v1, principal="12000.00", due_on=date(Y, 4, 1), repayments=[("12000.00", date(Y, 4, 1))])
    await make_loan(sm, village=v1, principal="8000.00", due_on=date(Y, 9, 1), repayments=[("7000.00", date(Y, 9, 1))])
    return county


class TestRepaymentChecks:
    async def test_poverty_office_triggers_a_check_and_townships_see_only_their_own(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await _two_townships(owner_sessionmaker)
        t0, t1, t2 = county.townships
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        body = {"area_code": county.code, "period_start": f"{Y}-01-01", "period_end": f"{Y}-12-31",
                "as_of": f"{Y}-12-31"}
        r = await client.post("/repayment-checks", headers=office, json=body)
        assert r.status_code == 202, r.text
        assert r.json()["created"] is True
        key = r.json()["key"]
        r2 = await client.post("/repayment-checks", headers=office, json=body)
        assert (r2.json()["key"], r2.json()["created"]) == (key, False)

        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"

        r = await client.get("/repayment-checks", headers=office, params={"area_code": county.code})
        assert r.status_code == 200
        items = {c["area_code"]: c for c in r.json()["items"]}
        assert set(items) == {t0, t1, t2}
        assert (items[t0]["principal_due"], items[t0]["principal_recovered"], items[t0]["rate"], items[t0]["band"]) == (
            "30000.00", "27000.00", "0.900000", "standard")
        assert (items[t1]["rate"], items[t1]["band"], items[t1]["loans_overdue"]) == ("0.950000", "reward", 1)
        assert (items[t2]["rate"], items[t2]["band"]) == (None, "no_loans_due")

        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t0)
        mine = (await client.get("/repayment-checks", headers=station)).json()["items"]
        assert [c["area_code"] for c in mine] == [t0]
        assert (await client.get(f"/repayment-checks/{items[t0]['id']}", headers=station)).status_code == 200
        other = await client.get(f"/repayment-checks/{items[t1]['id']}", headers=station)
        assert other.status_code == 404
        assert other.json()["code"] == "repayment_check.not_found"
        assert (await client.get(f"/repayment-checks/{items[t1]['id']}/loans", headers=station)).status_code == 404

        loans = (await client.get(f"/repayment-checks/{items[t0]['id']}/loans", headers=station)).json()["items"]
        assert [(x["principal"], x["recovered"], x["overdue"]) for x in loans] == [
            ("10000.00", "10000.00", False), ("10000.00", "8000.00", True), ("10000.00", "9000.00", True)]
        overdue = (await client.get(f"/repayment-checks/{items[t0]['id']}/loans", headers=station,
                                    params={"overdue": "true"})).json()["items"]
        assert [x["recovered"] for x in overdue] == ["8000.00", "9000.00"]

        assert (await client.post("/repayment-checks", headers=station, json=body)).status_code == 403

    async def test_another_countys_office_cannot_see_or_trigger(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1)
        other = await new_county(owner_sessionmaker, townships=1)
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=other.code)
        r = await client.post("/repayment-checks", headers=office, json={
            "area_code": county.code, "period_start": f"{Y}-01-01", "period_end": f"{Y}-12-31"})
        assert r.status_code == 404

    async def test_period_end_before_start_is_refused(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1)
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        r = await client.post("/repayment-checks", headers=office, json={
            "area_code": county.code, "period_start": f"{Y}-06-01", "period_end": f"{Y}-01-31"})
        assert r.status_code == 422
        assert r.json()["code"] == "assessment.bad_period"


class TestPolicies:
    async def test_office_adds_policy_floats_refused_duplicates_conflict(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1)
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        body = {"area_code": county.code, "effective_from": f"{Y}-01-01", "reward_threshold": "0.960000"}
        r = await client.post("/repayment-policies", headers=office, json=body)
        assert r.status_code == 201, r.text
        assert (r.json()["reward_threshold"], r.json()["penalty_threshold"]) == ("0.960000", "0.900000")
        assert (await client.post("/repayment-policies", headers=office, json=body)).status_code == 409
        bad = await client.post("/repayment-policies", headers=office,
                                json={**body, "effective_from": f"{Y}-02-01", "reward_threshold": 0.96})
        assert bad.status_code == 422
        unordered = await client.post("/repayment-policies", headers=office, json={
            **body, "effective_from": f"{Y}-03-01", "reward_threshold": "0.850000"})
        assert unordered.json()["code"] == "assessment.thresholds_unordered"
        listed = (await client.get("/repayment-policies", headers=office)).json()["items"]
        assert [p["effective_from"] for p in listed] == [f"{Y}-01-01"]


class TestQuotaProposals:
    async def test_annual_assessment_proposes_and_only_confirmation_changes_the_quota(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await _two_townships(owner_sessionmaker)
        t0, t1, t2 = county.townships
        v0 = county.villages[t0][0]
        # a loan that falls due Dec 31 and is repaid on Jan 3: before the January 5 check, so it counts
        await make_loan(owner_sessionmaker, village=v0, principal="10000.00", due_on=date(Y, 12, 31),
                        repayments=[("10000.00", date(Y + 1, 1, 3))])
        # t0 is now 37,000 / 40,000 = 92.5%: standard by default, penalty under this county's 93% policy
        await set_quota(owner_sessionmaker, township=t0, year=Y, amount="1000000.00")
        await set_quota(owner_sessionmaker, township=t1, year=Y, amount="333333.35")
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        r = await client.post("/repayment-policies", headers=office, json={
            "area_code": county.code, "effective_from": f"{Y}-01-01", "reward_threshold": "0.950000",
            "penalty_threshold": "0.930000", "quota_increase": "0.100000", "quota_cut": "0.200000"})
        assert r.status_code == 201

        key = annual_key(county.code, Y)
        async with owner_sessionmaker() as session, session.begin():
            await jobs.request_job(session, kind="assessment.annual", key=key, area_code=county.code,
                                   args={"county": county.code})
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"

        checks = {c["area_code"]: c for c in (await client.get(
            "/repayment-checks", headers=office, params={"kind": "annual"})).json()["items"]}
        assert (checks[t0]["as_of"], checks[t0]["principal_recovered"], checks[t0]["band"]) == (
            f"{Y + 1}-01-04", "37000.00", "penalty")

        props = {p["area_code"]: p for p in (await client.get(
            "/quota-proposals", headers=office, params={"year": Y + 1})).json()["items"]}
        assert set(props) == {t0, t1, t2}
        p0, p1, p2 = props[t0], props[t1], props[t2]
        assert (p0["band"], p0["current_quota"], p0["quota_change"], p0["proposed_quota"],
                p0["working_funds_eligible"], p0["reward"]) == (
            "penalty", "1000000.00", "-0.200000", "800000.00", False, False)
        assert (p1["band"], p1["proposed_quota"], p1["working_funds_eligible"], p1["reward"]) == (
            "reward", "366666.69", True, True)
        assert (p2["band"], p2["current_quota"], p2["proposed_quota"], p2["working_funds_eligible"]) == (
            "no_loans_due", None, None, True)

        async def quotas() -> list[tuple[str, str]]:
            # the loans domain's quota table: what approvals are checked against
            async with owner_sessionmaker() as session:
                rows = (await session.scalars(select(LoanQuota).where(
                    LoanQuota.year == Y + 1, LoanQuota.area_code.like(county.code[:6] + "%"))
                    .order_by(LoanQuota.area_code))).all()
            return [(q.area_code, str(q.amount)) for q in rows]

        assert await quotas() == []  # nothing changes a quota before confirmation
        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t0)
        assert (await client.post(f"/quota-proposals/{p0['id']}/confirm", headers=station)).status_code == 403
        assert (await client.get(f"/quota-proposals/{p1['id']}", headers=station)).status_code == 404

        r = await client.post(f"/quota-proposals/{p0['id']}/confirm", headers=office)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["confirmed_quota"]) == ("confirmed", "800000.00")
        assert (await client.post(f"/quota-proposals/{p0['id']}/confirm", headers=office)).status_code == 409
        none_amount = await client.post(f"/quota-proposals/{p2['id']}/confirm", headers=office)
        assert none_amount.json()["code"] == "assessment.no_quota_amount"
        r = await client.post(f"/quota-proposals/{p2['id']}/confirm", headers=office, json={"quota": "500000.00"})
        assert r.status_code == 200
        assert await quotas() == [(t0, "800000.00"), (t2, "500000.00")]

        # rerunning the annual key changes nothing
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"


class TestRiskReport:
    async def test_year_to_date_bands_ranking_and_overdue_loans(self, client, owner_sessionmaker, test_settings):
        county = await _two_townships(owner_sessionmaker)
        t0, t1, t2 = county.townships
        v1 = county.villages[t1][0]
        # t1: a loan due after the as-of date is not yet counted
        await make_loan(owner_sessionmaker, village=v1, principal="50000.00", due_on=date(Y, 12, 15))
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        r = await client.get("/reports/repayment-risk", headers=office,
                             params={"area_code": county.code, "as_of": f"{Y}-12-01"})
        assert r.status_code == 200, r.text
        rep = r.json()
        assert (rep["principal_due"], rep["principal_recovered"], rep["rate"], rep["band"]) == (
            "50000.00", "46000.00", "0.920000", "standard")
        assert rep["bands"] == {"reward": 1, "standard": 1, "penalty": 0, "no_loans_due": 1}
        assert [(t["area_code"], t["rank"]) for t in rep["ranking"]] == [(t1, 1), (t0, 2), (t2, None)]
        # Every township with overdue household loans, weakest rate first: t1 is in the reward band (95.00 %)
        # and still listed for its one overdue loan; t2 has none.
        assert [t["area_code"] for t in rep["at_risk"]] == [t0, t1]
        risk = rep["at_risk"][0]
        assert [(x["unpaid"], x["due_on"], x["days_overdue"]) for x in risk["overdue_loans"]] == [
            ("2000.00", f"{Y}-06-30", 154), ("1000.00", f"{Y}-11-30", 1)]
        assert [(x["unpaid"], x["due_on"], x["days_overdue"]) for x in rep["at_risk"][1]["overdue_loans"]] == [
            ("1000.00", f"{Y}-09-01", 91)]

        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t1)
        assert (await client.get("/reports/repayment-risk", headers=station,
                                 params={"area_code": county.code})).status_code == 404
        own = (await client.get("/reports/repayment-risk", headers=station,
                                params={"area_code": t1, "as_of": f"{Y}-12-01"})).json()
        assert [t["area_code"] for t in own["ranking"]] == [t1]
