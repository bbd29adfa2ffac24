from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from fupin.auth.roles import Role
from fupin.loans import workdays
from tests.factories import token_for
from tests.loans.factories import make_household

R = Role


async def submit(client, world, hh, *, amount="20000.00", term=12, purpose="livestock", member=None, product="household"):
    body = {"household_id": str(hh), "amount": amount, "term_months": term, "purpose": purpose, "product": product,
            "on": "2026-09-28"}
    if member:
        body["applicant_member_id"] = str(member)
    return await client.post("/loan-applications", headers=world.h[R.village_committee], json=body)


async def step(client, world, app_id, name, role, on, opinion="同意"):
    return await client.post(f"/loan-applications/{app_id}/steps", headers=world.h[role],
                             json={"step": name, "on": on, "opinion": opinion})


async def to_assessed(client, world, app_id):
    assert (await step(client, world, app_id, "village_review", R.village_committee, "2026-09-30")).status_code == 201
    assert (await step(client, world, app_id, "station_recommend", R.township_station, "2026-10-09")).status_code == 201
    r = await step(client, world, app_id, "coop_assess", R.credit_coop, "2026-10-12")
    assert r.status_code == 201, r.text


class TestEligibility:
    @pytest.mark.parametrize(("kwargs", "body", "code"), [
        ({"civil": False}, {"member": True}, "loan.applicant_no_civil_capacity"),
        ({"labour": "none"}, {}, "loan.household_no_labour"),
        ({"category": "tekun", "labour": "none"}, {}, "loan.wubao_household"),
        ({}, {"term": 13}, "loan.term_over_limit"),
        ({}, {"amount": "50000.01"}, "loan.amount_over_cap"),
        ({"certificate": False}, {}, "loan.no_certificate"),
    ])
    async def test_each_refusal_has_its_code(self, client, owner_sessionmaker, world, kwargs, body, code):
        hh, head = await make_household(owner_sessionmaker, world.village, **kwargs)
        extra = {k: v for k, v in body.items() if k != "member"}
        r = await submit(client, world, hh, member=head if body.get("member") else None, **extra)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code

    async def test_township_not_ready(self, client, owner_sessionmaker, world):
        other = world.county.townships[1]
        village = world.county.villages[other][0]
        hh, _ = await make_household(owner_sessionmaker, village)
        hdr = await token_for(owner_sessionmaker, client._transport.app.state.settings, role=R.village_committee,
                              area_code=village)
        r = await client.post("/loan-applications", headers=hdr, json={
            "household_id": str(hh), "amount": "1000.00", "term_months": 6, "purpose": "tobacco"})
        assert r.status_code == 422
        assert r.json()["code"] == "loan.township_not_ready"

    async def test_outstanding_loan_refused_on_submit(self, client, owner_sessionmaker, world):
        from fupin.loans.models import Loan

        hh, _ = await make_household(owner_sessionmaker, world.village)
        async with owner_sessionmaker() as s, s.begin():
            s.add(Loan(area_code=world.village, township_code=world.township, household_id=hh, product="household",
                       purpose="livestock", principal=Decimal("5000.00"), outstanding=Decimal("100.00"),
                       interest_rate=Decimal("0.0435"), disbursed_on=date(2026, 1, 1), due_on=date(2026, 12, 31),
                       status="current", coop_code="RCC"))
        r = await submit(client, world, hh)
        assert r.json()["code"] == "loan.outstanding_loan"

    async def test_eligibility_rechecked_at_approval(self, client, owner_sessionmaker, world):
        from sqlalchemy import update

        from fupin.households.models import Household

        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="8000.00")).json()
        await to_assessed(client, world, app["id"])
        async with owner_sessionmaker() as s, s.begin():
            await s.execute(update(Household).where(Household.id == hh).values(category="tekun"))
        r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")
        assert r.status_code == 422
        assert r.json()["code"] == "loan.wubao_household"

    async def test_non_productive_allowed_but_not_subsidy_eligible_and_flags_sort(self, client, owner_sessionmaker, world):
        plain, _ = await make_household(owner_sessionmaker, world.village)
        pref, _ = await make_household(owner_sessionmaker, world.village, family_planning=True, veteran=True)
        r = await submit(client, world, plain, purpose="non_productive", amount="3000.00")
        assert r.status_code == 201
        assert r.json()["subsidy_eligible"] is False
        r = await submit(client, world, pref, amount="3000.00")
        assert r.json()["subsidy_eligible"] is True
        assert r.json()["veteran"] is True
        items = (await client.get("/loan-applications", headers=world.h[R.township_station],
                                  params={"sort": "preference"})).json()["items"]
        assert items[0]["household_id"] == str(pref)

    async def test_tehuidai_exclusions_do_not_apply_cap_is_per_member(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village, labour="none", members=3, certificate=False)
        r = await submit(client, world, hh, product="tehuidai", amount="150000.00", term=36)
        assert r.status_code == 201, r.text
        r = await submit(client, world, hh, product="tehuidai", amount="150000.01", term=36)
        assert r.json()["code"] == "loan.amount_over_cap"

    async def test_county_rule_with_effective_date_changes_the_term(self, client, owner_sessionmaker, world):
        r = await client.post("/loan-products/rules", headers=world.h[R.county_admin], json={
            "county_code": world.county.code, "product": "household", "approval_threshold": "20000.00",
            "max_amount": "30000.00", "max_term_months": 18, "effective_from": "2026-09-01"})
        assert r.status_code == 201, r.text
        hh, _ = await make_household(owner_sessionmaker, world.village)
        assert (await submit(client, world, hh, term=18)).status_code == 201
        hh2, _ = await make_household(owner_sessionmaker, world.village)
        assert (await submit(client, world, hh2, amount="30000.01")).json()["code"] == "loan.amount_over_cap"


class TestWorkflow:
    async def test_20000_needs_no_county_approval(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="20000.00")).json()
        assert app["needs_county_approval"] is False
        await to_assessed(client, world, app["id"])
        r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")
        assert r.status_code == 201, r.text
        steps = (await client.get(f"/loan-applications/{app['id']}/steps", headers=world.h[R.village_committee])).json()["items"]
        assert [s["step"] for s in steps] == ["submit", "village_review", "station_recommend", "coop_assess", "approve"]
        assert steps[1]["role"] == "village_committee"
        assert steps[1]["opinion"] == "同意"

    async def test_20000_01_needs_poverty_office_and_credit_union(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="20000.01")).json()
        assert app["needs_county_approval"] is True
        await to_assessed(client, world, app["id"])
        r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")
        assert r.status_code == 409
        assert r.json()["code"] == "loan.county_approval_missing"
        assert (await step(client, world, app["id"], "poverty_office_approve", R.poverty_office, "2026-10-13")).status_code == 201
        r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")
        assert r.json()["code"] == "loan.county_approval_missing"
        assert (await step(client, world, app["id"], "credit_union_approve", R.credit_union, "2026-10-14")).status_code == 201
        r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-14")
        assert r.status_code == 201, r.text
        got = (await client.get(f"/loan-applications/{app['id']}", headers=world.h[R.credit_coop])).json()
        assert got["status"] == "approved"
        assert got["decided_on"] == "2026-10-14"

    async def test_wrong_role_and_wrong_order(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="1000.00")).json()
        r = await step(client, world, app["id"], "coop_assess", R.credit_coop, "2026-09-30")
        assert r.status_code == 409
        assert r.json()["code"] == "loan.invalid_transition"
        r = await step(client, world, app["id"], "station_recommend", R.township_station, "2026-09-30")
        assert r.status_code == 409

    async def test_deadlines_across_national_day_and_the_tiaoxiu_saturday(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="1000.00")).json()
        await step(client, world, app["id"], "village_review", R.village_committee, "2026-09-30")
        got = (await client.get(f"/loan-applications/{app['id']}", headers=world.h[R.township_station])).json()
        # Oct 1–7 holiday; working days Oct 8, 9, 10 (调休 Saturday), 12, 13
        assert got["station_due_on"] == "2026-10-13"
        over = lambda d: client.get("/loan-applications", headers=world.h[R.township_station],  # noqa: E731
                                    params={"overdue": "true", "as_of": d})
        assert app["id"] not in [a["id"] for a in (await over("2026-10-13")).json()["items"]]
        assert app["id"] in [a["id"] for a in (await over("2026-10-14")).json()["items"]]
        await step(client, world, app["id"], "station_recommend", R.township_station, "2026-10-09")
        got = (await client.get(f"/loan-applications/{app['id']}", headers=world.h[R.credit_coop])).json()
        # 10 working days after Oct 9: 10, 12, 13, 14, 15, 16, 19, 20, 21, 22
        assert got["coop_due_on"] == "2026-10-22"
        assert app["id"] in [a["id"] for a in (await over("2026-10-23")).json()["items"]]

    async def test_quota_limit_and_usage(self, client, owner_sessionmaker, world):
        r = await client.put("/loan-quotas", headers=world.h[R.poverty_office],
                             json={"township_code": world.township, "year": 2026, "amount": "15000.00"})
        assert r.status_code == 200, r.text
        ids = []
        for _ in range(2):
            hh, _ = await make_household(owner_sessionmaker, world.village)
            app = (await submit(client, world, hh, amount="10000.00")).json()
            await to_assessed(client, world, app["id"])
            ids.append(app["id"])
        assert (await step(client, world, ids[0], "approve", R.credit_coop, "2026-10-13")).status_code == 201
        r = await step(client, world, ids[1], "approve", R.credit_coop, "2026-10-13")
        assert r.status_code == 422
        assert r.json()["code"] == "loan.quota_exceeded"
        q = (await client.get("/loan-quotas", headers=world.h[R.township_station], params={"year": 2026})).json()["items"]
        assert q == [{"township_code": world.township, "year": 2026, "amount": "15000.00", "used": "10000.00",
                      "remaining": "5000.00"}]

    async def test_enterprise_poverty_office_reviews_credit_union_decides_no_cap(self, client, world):
        r = await client.post("/loan-applications", headers=world.h[R.poverty_office], json={
            "product": "enterprise", "enterprise_name": "龙头企业", "township_code": world.township,
            "amount": "800000.00", "term_months": 12, "purpose": "livestock", "on": "2026-10-09"})
        assert r.status_code == 201, r.text
        app = r.json()
        assert (await step(client, world, app["id"], "poverty_office_review", R.poverty_office, "2026-10-12")).status_code == 201
        r = await step(client, world, app["id"], "approve", R.credit_union, "2026-10-13")
        assert r.status_code == 201, r.text

    async def test_notifications_are_written_for_the_household(self, client, owner_sessionmaker, world):
        from sqlalchemy import func, select

        from fupin.loans.models import LoanNotification

        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="1000.00")).json()
        await step(client, world, app["id"], "village_review", R.village_committee, "2026-09-30")
        async with owner_sessionmaker() as s:
            n = await s.scalar(select(func.count()).select_from(LoanNotification).where(
                LoanNotification.household_id == hh))
        assert n == 2

    async def test_other_township_cannot_see_or_act(self, client, owner_sessionmaker, test_settings, world):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        app = (await submit(client, world, hh, amount="1000.00")).json()
        other = await token_for(owner_sessionmaker, test_settings, role=R.township_station,
                                area_code=world.county.townships[1])
        assert (await client.get(f"/loan-applications/{app['id']}", headers=other)).status_code == 404
        assert (await client.get(f"/loan-applications/{app['id']}/steps", headers=other)).status_code == 404
        assert app["id"] not in [a["id"] for a in (await client.get("/loan-applications", headers=other)).json()["items"]]


class TestCalendar:
    async def test_unknown_year_is_an_explicit_error_until_an_admin_adds_it(self, client, owner_sessionmaker, world):
        async with owner_sessionmaker() as s:
            with pytest.raises(Exception) as exc:
                await workdays.add_working_days(s, date(2031, 3, 2), 5)
            assert getattr(exc.value, "code", "") == "calendar.unknown_year"
        r = await client.put("/loan-holidays", headers=world.h[R.county_admin], json={
            "year": 2031, "holidays": ["2031-03-04"], "workdays": ["2031-03-08"], "complete": True})
        assert r.status_code == 200, r.text
        async with owner_sessionmaker() as s:
            # Mon 2031-03-03, (Tue 4 holiday), Wed 5, Thu 6, Fri 7, Sat 8 make-up day
            assert await workdays.add_working_days(s, date(2031, 3, 2), 5) == date(2031, 3, 8)
        async with owner_sessionmaker() as s, s.begin():
            from sqlalchemy import delete

            from fupin.loans.models import LoanHoliday, LoanHolidayYear

            await s.execute(delete(LoanHoliday).where(LoanHoliday.day >= date(2031, 1, 1)))
            await s.execute(delete(LoanHolidayYear).where(LoanHolidayYear.year == 2031))

    async def test_admin_added_holiday_in_a_known_year_moves_the_deadline(self, client, owner_sessionmaker, world):
        from sqlalchemy import delete

        from fupin.loans.models import LoanHoliday

        r = await client.put("/loan-holidays", headers=world.h[R.county_admin],
                             json={"year": 2026, "holidays": ["2026-10-09"], "workdays": []})
        assert r.status_code == 200, r.text
        try:
            hh, _ = await make_household(owner_sessionmaker, world.village)
            app = (await submit(client, world, hh, amount="1000.00")).json()
            await step(client, world, app["id"], "village_review", R.village_committee, "2026-09-30")
            got = (await client.get(f"/loan-applications/{app['id']}", headers=world.h[R.township_station])).json()
            # Oct 8, (9 now a holiday), 10 (调休 Saturday), 12, 13, 14
            assert got["station_due_on"] == "2026-10-14"
            r = await client.put("/loan-holidays", headers=world.h[R.township_station], json={"year": 2026})
            assert r.status_code == 403
        finally:
            async with owner_sessionmaker() as s, s.begin():
                await s.execute(delete(LoanHoliday).where(LoanHoliday.day == date(2026, 10, 9)))
