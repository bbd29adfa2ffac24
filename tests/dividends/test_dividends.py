from __future__ import annotations

import io
import uuid
from datetime import date
from decimal import Decimal

import openpyxl
from sqlalchemy import func, select

from fupin.auth.roles import Role
from fupin.dividends import jobs as dividend_jobs
from fupin.dividends.models import DividendPayout
from fupin.ledger.models import JournalEntry, LedgerAccount
from fupin_worker import runner
from tests.dividends.factories import make_household, make_loan
from tests.factories import new_county, token_for


async def _pay(app_sessionmaker, test_settings, run: dict) -> str:
    """What the worker does with the run's key: claim, handler, commit effects with `done`."""
    return await runner.execute(app_sessionmaker, test_settings, run["job_key"])


async def _balance(owner_sessionmaker, code: str) -> Decimal | None:
    async with owner_sessionmaker() as session:
        return await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.code == code))


async def _setup(owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
    return county, office


def _rate_pool(area: str, start: str = "2017-01-01", rate: str = "0.03") -> dict:
    return {"name": "特惠贷统筹", "operator_name": "县开发投资公司", "operator_kind": "company", "model": "rate",
            "rate": rate, "term_years": 3, "start_on": start, "area_code": area, "per_person_cap": "50000"}


def _coop_pool(area: str, start: str = "2022-01-01") -> dict:
    return {"name": "藏香猪代养", "operator_name": "畜禽养殖专业合作社", "operator_kind": "cooperative",
            "model": "fixed", "fixed_amount": "1000", "term_years": 3, "start_on": start, "area_code": area,
            "insurance_premium": "216", "insurance_cover": "200000"}


async def _pool(client, hdr, body: dict) -> str:
    r = await client.post("/dividend-pools", headers=hdr, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _hold(client, hdr, pool_id: str, household_id: uuid.UUID, amount: str, **extra) -> dict:
    r = await client.post(f"/dividend-pools/{pool_id}/holdings", headers=hdr,
                          json={"household_id": str(household_id), "amount": amount, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def _run(client, hdr, pool_id: str, period: str) -> dict:
    r = await client.post("/dividend-runs", headers=hdr, json={"pool_id": pool_id, "period": period})
    assert r.status_code == 202, r.text
    return r.json()


class TestReferenceCase:
    async def test_28_households_72_persons_3_6_million_pay_108000_and_1500_a_person(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        pool_id = await _pool(client, office, _rate_pool(township))
        villages = county.villages[township]
        sizes = [3] * 16 + [2] * 12  # 28 households, 72 persons
        for i, n in enumerate(sizes):
            # one household has a member who left (inactive): persons counts active members only
            hid = await make_household(owner_sessionmaker, village=villages[i % 2], persons=n,
                                       inactive_members=1 if i == 0 else 0)
            await _hold(client, office, pool_id, hid, str(50_000 * n))
        run = await _run(client, office, pool_id, "2017")
        assert run["status"] == "pending"
        assert await _pay(app_sessionmaker, test_settings, run) == "done"

        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        assert detail["status"] == "paid"
        assert detail["total"] == "108000.00"
        assert (detail["households"], detail["persons"]) == (28, 72)
        assert detail["per_person"] == "1500.00"
        assert len(detail["lines"]) == 28
        for line in detail["lines"]:
            assert Decimal(line["amount"]) == Decimal(1500 * line["persons"])
            assert line["per_person"] == ["1500.00"] * line["persons"]
        assert await _balance(owner_sessionmaker, f"operator:{pool_id}:dividend") == Decimal("-108000.00")
        some = detail["lines"][0]
        assert await _balance(owner_sessionmaker, f"household:{some['household_id']}:dividend") == Decimal(some["amount"])

        r = await client.get(f"/dividend-runs/{run['id']}/roster", headers=office, params={"format": "xlsx"})
        assert r.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        rows = list(ws.iter_rows(values_only=True))
        assert len(rows) == 2 + 28 + 1
        assert rows[-1][5] == "108000.00"
        assert rows[-1][6] == 72
        assert rows[-1][7] == "1500.00"
        roster = (await client.get(f"/dividend-runs/{run['id']}/roster", headers=office)).json()
        assert roster["total"] == "108000.00"


class TestProRating:
    async def test_mid_year_holdings_are_pro_rated_and_future_or_redeemed_ones_get_nothing(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        village = county.villages[township][0]
        coop = await _pool(client, office, _coop_pool(township, start="2022-01-01"))
        full = await make_household(owner_sessionmaker, village=village, persons=4)
        march = await make_household(owner_sessionmaker, village=village, persons=3)
        october = await make_household(owner_sessionmaker, village=village, persons=2)
        future = await make_household(owner_sessionmaker, village=village, persons=2)
        redeemed = await make_household(owner_sessionmaker, village=village, persons=2)
        await _hold(client, office, coop, full, "10000")
        await _hold(client, office, coop, march, "10000", start_on="2022-03-15")  # 292 of 365 days → 800.00
        await _hold(client, office, coop, october, "10000", start_on="2022-10-01")  # 92 days: 252.054… → 252.05
        await _hold(client, office, coop, future, "10000", start_on="2023-01-01")
        gone = await _hold(client, office, coop, redeemed, "10000")
        r = await client.post(f"/dividend-pools/{coop}/holdings/{gone['id']}/redeem", headers=office,
                              json={"in_kind": True, "on": "2022-06-30"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "redeemed_in_kind"

        rate_pool = await _pool(client, office, _rate_pool(township, start="2022-01-01"))
        july = await make_household(owner_sessionmaker, village=village, persons=3)
        # 100,000 × 0.03 × 184 / 365 = 1512.328… → 1512.33
        await _hold(client, office, rate_pool, july, "100000", start_on="2022-07-01")

        run = await _run(client, office, coop, "2022")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        by_household = {ln["household_id"]: ln for ln in detail["lines"]}
        assert by_household[str(full)]["amount"] == "1000.00"
        assert by_household[str(march)]["amount"] == "800.00"
        assert by_household[str(march)]["days_held"] == 292
        assert by_household[str(march)]["per_person"] == ["266.67", "266.67", "266.66"]
        assert by_household[str(october)]["amount"] == "252.05"
        assert by_household[str(october)]["per_person"] == ["126.03", "126.02"]
        assert str(future) not in by_household
        assert str(redeemed) not in by_household
        assert detail["total"] == "2052.05"
        assert (detail["households"], detail["persons"]) == (3, 9)

        run = await _run(client, office, rate_pool, "2022")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        assert detail["total"] == "1512.33"
        assert detail["lines"][0]["per_person"] == ["504.11", "504.11", "504.11"]

    async def test_sql_figures_equal_the_python_rule_to_the_fen(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        from fupin.dividends import rules

        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[1]
        village = county.villages[township][1]
        pool_id = await _pool(client, office, _rate_pool(township, start="2022-01-01", rate="0.0258"))
        period = rules.parse_period("2022-02-01..2022-08-31")
        cases = [("12345.67", "2022-01-01"), ("50000", "2022-03-17"), ("99999.99", "2022-08-31"),
                 ("7.77", "2022-05-05"), ("150000", "2022-02-01")]
        expected: dict[str, Decimal] = {}
        for amount, start in cases:
            hid = await make_household(owner_sessionmaker, village=village, persons=3)
            h = await _hold(client, office, pool_id, hid, amount, start_on=start)
            held = rules.days_held(period, date.fromisoformat(start), date.fromisoformat(h["end_on"]))
            expected[str(hid)] = rules.entitlement(model=rules.PoolModel.rate, amount=Decimal(amount),
                                                   rate=Decimal("0.0258"), fixed_amount=None, held=held,
                                                   period_days=period.days)
        run = await _run(client, office, pool_id, period.label)
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        got = {ln["household_id"]: Decimal(ln["amount"]) for ln in detail["lines"]}
        assert got == expected
        assert Decimal(detail["total"]) == sum(expected.values())


class TestIdempotency:
    async def test_rerunning_a_period_pays_nothing(self, client, owner_sessionmaker, app_sessionmaker, test_settings):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        pool_id = await _pool(client, office, _coop_pool(township))
        hid = await make_household(owner_sessionmaker, village=county.villages[township][0], persons=2)
        await _hold(client, office, pool_id, hid, "10000")
        run = await _run(client, office, pool_id, "2022")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        account = f"household:{hid}:dividend"
        assert await _balance(owner_sessionmaker, account) == Decimal("1000.00")

        r = await client.post("/dividend-runs", headers=office, json={"pool_id": pool_id, "period": "2022"})
        assert r.status_code == 409
        assert r.json()["code"] == "dividend.run_exists"
        r = await client.post("/dividend-runs", headers=office,
                              json={"pool_id": pool_id, "period": "2022-06-01..2022-12-31"})
        assert r.status_code == 409  # overlapping days would be paid twice
        r = await client.post("/dividend-runs", headers=office, json={"pool_id": pool_id, "period": "2099"})
        assert r.status_code == 422
        assert r.json()["code"] == "dividend.period_not_ended"
        assert await _pay(app_sessionmaker, test_settings, run) == "already_done"
        async with app_sessionmaker() as session, session.begin():
            from fupin.db import ALL_AREAS, set_area_scope

            await set_area_scope(session, ALL_AREAS)
            again = await dividend_jobs.pay_run(session, run_id=uuid.UUID(run["id"]), run_on=date(2023, 1, 2))
        assert again["already_paid"] is True
        assert await _balance(owner_sessionmaker, account) == Decimal("1000.00")
        async with owner_sessionmaker() as session:
            payouts = await session.scalar(select(func.count()).select_from(DividendPayout)
                                           .where(DividendPayout.run_id == uuid.UUID(run["id"])))
            entries = await session.scalar(select(func.count()).select_from(JournalEntry)
                                           .where(JournalEntry.run_id == uuid.UUID(run["id"])))
        assert (payouts, entries) == (1, 1)


class TestRedemptionAndMaturity:
    async def test_redemption_returns_exactly_the_share_and_stops_later_payouts(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        pool_id = await _pool(client, office, _coop_pool(township))
        stays = await make_household(owner_sessionmaker, village=county.villages[township][0], persons=2)
        leaves = await make_household(owner_sessionmaker, village=county.villages[township][1], persons=3)
        await _hold(client, office, pool_id, stays, "10000")
        h = await _hold(client, office, pool_id, leaves, "10000")
        first = await _run(client, office, pool_id, "2022")
        assert await _pay(app_sessionmaker, test_settings, first) == "done"
        first = (await client.get(f"/dividend-runs/{first['id']}", headers=office)).json()
        assert (first["total"], first["insurance_premiums"]) == ("2000.00", "432.00")  # 2 × ¥216

        r = await client.post(f"/dividend-pools/{pool_id}/holdings/{h['id']}/redeem", headers=office,
                              json={"on": "2023-01-10"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "redeemed"
        assert r.json()["closed_on"] == "2023-01-10"
        assert await _balance(owner_sessionmaker, f"household:{leaves}:share") == Decimal("10000.00")
        assert await _balance(owner_sessionmaker, f"operator:{pool_id}:share") == Decimal("-10000.00")
        r = await client.post(f"/dividend-pools/{pool_id}/holdings/{h['id']}/redeem", headers=office, json={})
        assert r.status_code == 409
        assert r.json()["code"] == "dividend.holding_closed"

        run = await _run(client, office, pool_id, "2023")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        assert [ln["household_id"] for ln in detail["lines"]] == [str(stays)]
        assert detail["total"] == "1000.00"
        assert await _balance(owner_sessionmaker, f"household:{leaves}:dividend") == Decimal("1000.00")

        view = (await client.get(f"/households/{leaves}/dividends", headers=office)).json()
        assert view["years"] == [{"year": 2022, "total": "1000.00"}]
        view = (await client.get(f"/households/{stays}/dividends", headers=office)).json()
        assert view["years"] == [{"year": 2022, "total": "1000.00"}, {"year": 2023, "total": "1000.00"}]
        assert {it["pool_name"] for it in view["items"]} == {"藏香猪代养"}

    async def test_maturity_job_marks_ended_contracts_and_renewal_extends_them(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        from fupin import jobs

        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        pool_id = await _pool(client, office, _coop_pool(township, start="2020-01-01"))
        hid = await make_household(owner_sessionmaker, village=county.villages[township][0])
        h = await _hold(client, office, pool_id, hid, "10000")
        assert h["end_on"] == "2022-12-31"
        key = f"dividend.mature:test-{uuid.uuid4().hex[:8]}"
        async with owner_sessionmaker() as session, session.begin():
            await jobs.request_job(session, kind="dividend.mature", key=key, area_code="", args={"on": "2023-01-01"})
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
        matured = (await client.get(f"/dividend-pools/{pool_id}/holdings", headers=office,
                                    params={"status": "matured"})).json()["items"]
        assert [m["id"] for m in matured] == [h["id"]]
        r = await client.post(f"/dividend-pools/{pool_id}/holdings/{h['id']}/renew", headers=office, json={})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["end_on"]) == ("renewed", "2025-12-31")

    async def test_daily_cron_entry_is_keyed_by_day(self):
        from datetime import datetime

        from fupin_worker.jobs.dividends import daily_maturity
        from fupin_worker.kinds import SCHEDULE

        assert any(e.due is daily_maturity for e in SCHEDULE)
        due = daily_maturity(datetime(2022, 11, 23, 8, 0))
        assert [(d.kind, d.key, d.args) for d in due] == [
            ("dividend.mature", "dividend.mature:2022-11-23", {"on": "2022-11-23"})
        ]


class TestHoldingRules:
    async def test_only_registered_households_once_per_pool_and_loans_must_match(
        self, client, owner_sessionmaker, test_settings
    ):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        village = county.villages[township][0]
        pool_id = await _pool(client, office, _rate_pool(township))
        applied = await make_household(owner_sessionmaker, village=village, status="applied")
        r = await client.post(f"/dividend-pools/{pool_id}/holdings", headers=office,
                              json={"household_id": str(applied), "amount": "50000"})
        assert r.status_code == 422
        assert r.json()["code"] == "dividend.household_not_registered"

        hid = await make_household(owner_sessionmaker, village=village, persons=2)
        other = await make_household(owner_sessionmaker, village=village, persons=1)
        foreign_loan = await make_loan(owner_sessionmaker, household_id=other, village=village, principal="50000")
        r = await client.post(f"/dividend-pools/{pool_id}/holdings", headers=office,
                              json={"household_id": str(hid), "amount": "100000", "loan_id": str(foreign_loan)})
        assert r.json()["code"] == "dividend.loan_mismatch"
        r = await client.post(f"/dividend-pools/{pool_id}/holdings", headers=office,
                              json={"household_id": str(hid), "amount": "100000.01"})
        assert r.status_code == 422
        assert r.json()["code"] == "dividend.amount_over_cap"  # 2 persons × ¥50,000
        loan = await make_loan(owner_sessionmaker, household_id=hid, village=village, principal="100000")
        h = await _hold(client, office, pool_id, hid, "100000", loan_id=str(loan))
        assert h["loan_id"] == str(loan)
        assert (h["start_on"], h["end_on"]) == ("2017-01-01", "2019-12-31")
        r = await client.post(f"/dividend-pools/{pool_id}/holdings", headers=office,
                              json={"household_id": str(hid), "amount": "1000"})
        assert r.status_code == 409
        assert r.json()["code"] == "dividend.holding_exists"

    async def test_floats_and_mismatched_terms_are_refused(self, client, owner_sessionmaker, test_settings):
        county, office = await _setup(owner_sessionmaker, test_settings)
        bad = _rate_pool(county.townships[0])
        r = await client.post("/dividend-pools", headers=office, json={**bad, "rate": 0.03})
        assert r.status_code == 422
        r = await client.post("/dividend-pools", headers=office, json={**bad, "fixed_amount": "1000"})
        assert r.status_code == 422
        r = await client.post("/dividend-pools", headers=office, json={**bad, "area_code": county.villages[county.townships[0]][0]})
        assert r.json()["code"] == "dividend.pool_area_level"


class TestScopeAndRoles:
    async def test_another_townships_pool_is_invisible(self, client, owner_sessionmaker, app_sessionmaker, test_settings):
        county, office = await _setup(owner_sessionmaker, test_settings)
        mine, theirs = county.townships
        pool_id = await _pool(client, office, _coop_pool(theirs))
        hid = await make_household(owner_sessionmaker, village=county.villages[theirs][0])
        h = await _hold(client, office, pool_id, hid, "10000")
        run = await _run(client, office, pool_id, "2022")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"

        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=mine)
        finance = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=mine)
        assert (await client.get(f"/dividend-pools/{pool_id}", headers=station)).status_code == 404
        assert (await client.get(f"/dividend-pools/{pool_id}/holdings", headers=station)).status_code == 404
        listed = (await client.get("/dividend-pools", headers=station)).json()["items"]
        assert pool_id not in {p["id"] for p in listed}
        assert (await client.get(f"/dividend-runs/{run['id']}", headers=station)).status_code == 404
        assert (await client.get(f"/dividend-runs/{run['id']}/roster", headers=station)).status_code == 404
        assert run["id"] not in {r["id"] for r in (await client.get("/dividend-runs", headers=station)).json()["items"]}
        assert (await client.get(f"/households/{hid}/dividends", headers=station)).status_code == 404
        r = await client.post(f"/dividend-pools/{pool_id}/holdings/{h['id']}/redeem", headers=station, json={})
        assert r.status_code == 404
        r = await client.post("/dividend-runs", headers=finance, json={"pool_id": pool_id, "period": "2023"})
        assert r.status_code == 404
        # and a township user cannot enrol a household of another township in its own pool
        own_pool = await _pool(client, station, _coop_pool(mine))
        r = await client.post(f"/dividend-pools/{own_pool}/holdings", headers=station,
                              json={"household_id": str(hid), "amount": "10000"})
        assert r.status_code == 404

    async def test_roles_without_the_function_are_refused(self, client, owner_sessionmaker, test_settings):
        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[0]
        pool_id = await _pool(client, office, _coop_pool(township))
        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
        auditor = await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=county.code)
        r = await client.post("/dividend-runs", headers=station, json={"pool_id": pool_id, "period": "2022"})
        assert r.status_code == 403
        assert (await client.post("/dividend-pools", headers=auditor, json=_coop_pool(township))).status_code == 403
        assert (await client.get(f"/dividend-pools/{pool_id}", headers=auditor)).status_code == 200


class TestHouseholdView:
    async def test_township_sees_its_households_dividends_from_a_county_pool_with_persons_snapshot(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        from sqlalchemy import update

        from fupin.households.models import Member

        county, office = await _setup(owner_sessionmaker, test_settings)
        township = county.townships[1]
        pool_id = await _pool(client, office, _rate_pool(county.code, start="2022-01-01"))
        hid = await make_household(owner_sessionmaker, village=county.villages[township][1], persons=2)
        await _hold(client, office, pool_id, hid, "100000")
        run = await _run(client, office, pool_id, "2022")
        assert await _pay(app_sessionmaker, test_settings, run) == "done"
        async with owner_sessionmaker() as session, session.begin():  # a member leaves after the run
            first = await session.scalar(select(Member.id).where(Member.household_id == hid).limit(1))
            await session.execute(update(Member).where(Member.id == first).values(active=False))

        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
        assert (await client.get(f"/dividend-pools/{pool_id}", headers=station)).status_code == 404  # county's pool
        r = await client.get(f"/households/{hid}/dividends", headers=station)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["years"] == [{"year": 2022, "total": "3000.00"}]
        assert [(it["pool_name"], it["period"], it["amount"], it["persons"]) for it in body["items"]] == [
            ("特惠贷统筹", "2022", "3000.00", 2)
        ]
        detail = (await client.get(f"/dividend-runs/{run['id']}", headers=office)).json()
        assert detail["lines"][0]["per_person"] == ["1500.00", "1500.00"]
        assert detail["entry_id"] is not None
