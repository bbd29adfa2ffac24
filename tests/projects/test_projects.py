from __future__ import annotations

from decimal import Decimal

import pytest

from fupin.auth.roles import Role
from fupin.ledger import service as ledger
from tests.factories import new_county, token_for
from tests.projects.factories import advance_to, create_project, make_household, move, notice


async def _setup(owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    t1 = county.townships[0]
    admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t1)
    return county, t1, admin, station


async def _tie(client, headers, owner_sessionmaker, pid, village, amount="0.00", kind="infrastructure"):
    hid = await make_household(owner_sessionmaker, village=village)
    r = await client.post(
        f"/projects/{pid}/beneficiaries", headers=headers,
        json={"villages": [village], "households": [{"household_id": str(hid), "kind": kind, "amount": amount}]},
    )
    assert r.status_code == 201, r.text
    return hid


class TestLibrary:
    async def test_create_get_and_library_view_by_area_and_year(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        village = county.villages[t1][0]
        p = await create_project(
            client, station, t1, villages=[village],
            budget={"central": "100000.00", "county": "50000.50"},
            quantities=[{"item": "组组通道路", "unit": "km", "planned": "16.38", "done": "12"}],
        )
        assert p["status"] == "proposed"
        assert p["townships"] == [t1]
        assert p["villages"] == [village]
        assert p["budget"] == {
            "central": "100000.00", "provincial": "0.00", "municipal": "0.00", "county": "50000.50", "other": "0.00"
        }
        assert p["budget_total"] == "150000.50"
        assert p["quantities"][0]["planned"] == "16.38"
        await create_project(client, admin, county.code, year=2025, name="县级旅游项目")
        r = await client.get(f"/projects/{p['id']}", headers=admin)
        assert r.status_code == 200
        assert r.json()["name"] == p["name"]
        r = await client.get("/projects", headers=admin, params={"area_code": county.code, "year": 2026})
        assert [x["id"] for x in r.json()["items"]] == [p["id"]]
        r = await client.get("/projects", headers=admin, params={"area_code": county.code})
        assert len(r.json()["items"]) == 2

    async def test_float_amounts_and_unknown_kinds_are_refused(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        from tests.projects.factories import project_body

        r = await client.post("/projects", headers=station, json=project_body(t1, budget={"central": 100.5}))
        assert r.status_code == 422
        r = await client.post("/projects", headers=station, json=project_body(t1, kind="游戏"))
        assert r.status_code == 422
        r = await client.post("/projects", headers=station, json=project_body(t1, budget={"central": "1.001"}))
        assert r.status_code == 422

    @pytest.mark.parametrize("bad", ["-0.01", "0.001", "1e2", "1E+2", 0.1, 100, "NaN", "Infinity", "1,000", " 5.00",
                                     "1234567890123456"])
    async def test_money_policy_plain_strings_with_at_most_two_decimals(self, client, owner_sessionmaker, test_settings, bad):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        from tests.projects.factories import project_body

        r = await client.post("/projects", headers=station, json=project_body(t1, budget={"central": bad}))
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "request.invalid"

    async def test_village_outside_the_owner_is_refused(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        other_village = county.villages[county.townships[1]][0]
        from tests.projects.factories import project_body

        r = await client.post("/projects", headers=station, json=project_body(t1, villages=[other_village]))
        assert r.status_code == 422
        assert r.json()["code"] == "project.area_outside_owner"


class TestLifecycle:
    async def test_steps_cannot_be_skipped(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        for target in ("approved", "in_progress", "accepted", "closed"):
            r = await move(client, station, p["id"], target)
            assert r.status_code == 409, target
            assert r.json()["code"] == "project.transition_not_allowed"
        assert (await move(client, station, p["id"], "in_library")).status_code == 201
        r = await move(client, station, p["id"], "tendering")
        assert r.json()["code"] == "project.transition_not_allowed"
        r = await move(client, station, p["id"], "proposed")
        assert r.json()["code"] == "project.transition_not_allowed"

    async def test_approval_needs_a_finished_public_notice(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        await move(client, station, p["id"], "in_library")
        r = await move(client, station, p["id"], "approved", on="2026-03-10")
        assert r.status_code == 422
        assert r.json()["code"] == "project.notice_required"
        await notice(client, station, p["id"], "pre_approval")  # runs 2026-03-01 … 2026-03-07
        r = await move(client, station, p["id"], "approved", on="2026-03-05")  # period not over yet
        assert r.json()["code"] == "project.notice_required"
        r = await move(client, station, p["id"], "approved", on="2026-03-07")
        assert r.status_code == 201, r.text

    async def test_full_line_with_acceptance_and_post_acceptance_notice(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        await _tie(client, station, owner_sessionmaker, p["id"], county.villages[t1][0])
        await advance_to(client, station, p["id"], "accepted")
        r = await move(client, station, p["id"], "closed", on="2026-03-10")
        assert r.json()["code"] == "project.notice_required"
        await notice(client, station, p["id"], "post_acceptance")
        assert (await move(client, station, p["id"], "closed", on="2026-03-10")).status_code == 201
        got = (await client.get(f"/projects/{p['id']}", headers=station)).json()
        assert got["status"] == "closed"
        assert got["accepted_on"] == "2026-03-10"
        assert got["acceptance_team"] == "县扶贫办验收组"
        history = (await client.get(f"/projects/{p['id']}/transitions", headers=station)).json()["items"]
        assert [h["to_status"] for h in history] == [
            "in_library", "approved", "tendering", "in_progress", "completed", "accepted", "closed"
        ]
        r = await move(client, station, p["id"], "cancelled", reason="x")
        assert r.json()["code"] == "project.transition_not_allowed"

    async def test_tendering_ends_with_a_winning_bid_and_progress_is_recorded(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        await advance_to(client, station, p["id"], "tendering")
        r = await client.post(f"/projects/{p['id']}/bids", headers=station, json={"bidder": "甲公司", "amount": "98000.00"})
        assert r.status_code == 201
        r = await move(client, station, p["id"], "in_progress")
        assert r.json()["code"] == "project.no_winning_bid"
        r = await client.post(
            f"/projects/{p['id']}/bids", headers=station, json={"bidder": "乙公司", "amount": "95000.00", "winner": True}
        )
        assert r.status_code == 201
        r = await client.post(
            f"/projects/{p['id']}/bids", headers=station, json={"bidder": "丙公司", "amount": "90000.00", "winner": True}
        )
        assert r.json()["code"] == "project.winner_exists"
        assert (await move(client, station, p["id"], "in_progress")).status_code == 201
        bids = (await client.get(f"/projects/{p['id']}/bids", headers=station)).json()["items"]
        assert [(b["bidder"], b["amount"], b["winner"]) for b in bids] == [
            ("甲公司", "98000.00", False), ("乙公司", "95000.00", True)
        ]
        r = await client.post(
            f"/projects/{p['id']}/progress", headers=station, json={"percent": 90, "reported_on": "2026-05-20", "note": "4条完工"}
        )
        assert r.status_code == 201
        r = await client.post(f"/projects/{p['id']}/progress", headers=station, json={"percent": 80, "reported_on": "2026-05-21"})
        assert r.json()["code"] == "project.progress_backwards"
        prog = (await client.get(f"/projects/{p['id']}/progress", headers=station)).json()["items"]
        assert [(x["percent"], x["reported_on"]) for x in prog] == [(90, "2026-05-20")]

    async def test_suspend_needs_a_reason_and_resumes_only_to_the_prior_state(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        await advance_to(client, station, p["id"], "approved")
        r = await move(client, station, p["id"], "suspended")
        assert r.json()["code"] == "project.reason_required"
        assert (await move(client, station, p["id"], "suspended", reason="资金未到位")).status_code == 201
        got = (await client.get(f"/projects/{p['id']}", headers=station)).json()
        assert (got["status"], got["suspended_from"], got["status_reason"]) == ("suspended", "approved", "资金未到位")
        r = await move(client, station, p["id"], "tendering")
        assert r.json()["code"] == "project.transition_not_allowed"
        assert (await move(client, station, p["id"], "approved")).status_code == 201
        got = (await client.get(f"/projects/{p['id']}", headers=station)).json()
        assert (got["status"], got["suspended_from"]) == ("approved", None)
        assert (await move(client, station, p["id"], "cancelled", reason="群众不同意")).status_code == 201
        r = await move(client, station, p["id"], "tendering")
        assert r.json()["code"] == "project.transition_not_allowed"


class TestNoVillageNoHousehold:
    async def test_acceptance_refused_without_village_and_household(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        await advance_to(client, station, p["id"], "completed")
        extra = {"acceptance_team": "验收组", "acceptance_result": "合格"}
        r = await move(client, station, p["id"], "accepted", **extra)
        assert r.status_code == 422
        assert r.json()["code"] == "project.no_beneficiaries"
        # a village alone is not enough: 到村到户 needs households too
        r = await client.post(f"/projects/{p['id']}/beneficiaries", headers=station, json={"villages": [county.villages[t1][0]]})
        assert r.status_code == 201
        r = await move(client, station, p["id"], "accepted", **extra)
        assert r.json()["code"] == "project.no_beneficiaries"
        await _tie(client, station, owner_sessionmaker, p["id"], county.villages[t1][0])
        assert (await move(client, station, p["id"], "accepted", **extra)).status_code == 201

    async def test_funds_refused_without_village_and_household(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        finance = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=t1)
        p = await create_project(client, station, t1)
        await advance_to(client, station, p["id"], "approved")
        body = {"movement": "allocation", "source": "central", "amount": "1000.00", "effective_on": "2026-04-01"}
        r = await client.post(f"/projects/{p['id']}/funds", headers=finance, json=body)
        assert r.status_code == 422
        assert r.json()["code"] == "project.no_beneficiaries"
        await _tie(client, station, owner_sessionmaker, p["id"], county.villages[t1][0])
        assert (await client.post(f"/projects/{p['id']}/funds", headers=finance, json=body)).status_code == 201


class TestBenefitCap:
    async def test_cap_off_by_default_then_enforced_across_industry_projects(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        village = county.villages[t1][0]
        hid = await make_household(owner_sessionmaker, village=village)
        a = await create_project(client, station, t1, kind="产业")
        b = await create_project(client, station, t1, kind="产业")
        road = await create_project(client, station, t1, kind="基础设施/组组通道路")

        def one(kind, amount):
            return {"households": [{"household_id": str(hid), "kind": kind, "amount": amount}]}

        r = await client.post(f"/projects/{a['id']}/beneficiaries", headers=station, json=one("dividends", "2000.00"))
        assert r.status_code == 201, r.text
        r = await client.post(f"/projects/{b['id']}/beneficiaries", headers=station, json=one("cash", "1500.00"))
        assert r.status_code == 201, r.text  # off by default: ¥3,500 in total is allowed

        r = await client.post("/project-settings", headers=admin, json={
            "county_code": county.code, "household_benefit_cap": "3000.00", "effective_from": "2020-01-01"})
        assert r.status_code == 201, r.text
        c = await create_project(client, station, t1, kind="产业")
        r = await client.post(f"/projects/{c['id']}/beneficiaries", headers=station, json=one("jobs", "0.01"))
        assert r.status_code == 422
        assert r.json()["code"] == "project.household_benefit_cap"
        assert r.json()["extra"] == {"household_id": str(hid), "total": "3500.01", "cap": "3000.00"}
        # infrastructure benefit and non-industry projects do not count toward the cap
        r = await client.post(f"/projects/{c['id']}/beneficiaries", headers=station, json=one("infrastructure", "800.00"))
        assert r.status_code == 201
        r = await client.post(f"/projects/{road['id']}/beneficiaries", headers=station, json=one("cash", "5000.00"))
        assert r.status_code == 201

    async def test_cap_allows_exactly_the_cap(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        village = county.villages[t1][1]
        hid = await make_household(owner_sessionmaker, village=village)
        r = await client.post("/project-settings", headers=admin, json={
            "county_code": county.code, "household_benefit_cap": "3000.00", "effective_from": "2020-01-01"})
        assert r.status_code == 201
        a = await create_project(client, station, t1, kind="产业")
        b = await create_project(client, station, t1, kind="产业")
        hh = {"household_id": str(hid), "kind": "cash"}
        r = await client.post(f"/projects/{a['id']}/beneficiaries", headers=station, json={"households": [{**hh, "amount": "2999.99"}]})
        assert r.status_code == 201
        r = await client.post(f"/projects/{b['id']}/beneficiaries", headers=station, json={"households": [{**hh, "amount": "0.02"}]})
        assert r.json()["code"] == "project.household_benefit_cap"
        r = await client.post(f"/projects/{b['id']}/beneficiaries", headers=station, json={"households": [{**hh, "amount": "0.01"}]})
        assert r.status_code == 201


class TestFunds:
    async def test_budget_ceiling_final_payment_and_ledger(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        finance = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=t1)
        p = await create_project(client, station, t1, budget={"central": "100000.00"})
        pid = p["id"]
        await _tie(client, station, owner_sessionmaker, pid, county.villages[t1][0])
        r = await client.post(f"/projects/{pid}/funds", headers=finance, json={
            "movement": "allocation", "source": "central", "amount": "100.00", "effective_on": "2026-04-01"})
        assert r.json()["code"] == "project.not_fundable"  # proposed: not yet approved
        await advance_to(client, station, pid, "in_progress")

        async def fund(**body):
            return await client.post(f"/projects/{pid}/funds", headers=finance, json={"effective_on": "2026-04-01", **body})

        r = await fund(movement="allocation", source="central", amount="100000.01")
        assert r.json()["code"] == "project.over_budget"
        r = await fund(movement="allocation", source="provincial", amount="1.00")  # no provincial budget
        assert r.json()["code"] == "project.over_budget"
        assert (await fund(movement="allocation", source="central", amount="60000.00")).status_code == 201
        assert (await fund(movement="allocation", source="central", amount="40000.00")).status_code == 201
        r = await fund(movement="disbursement", source="central", amount="90000.00", payee_kind="bidder", milestone="主体完工")
        assert r.status_code == 201, r.text
        assert r.json()["payee"] == "某建设公司"
        r = await fund(movement="disbursement", source="central", amount="10000.01")
        assert r.json()["code"] == "project.over_budget"
        r = await fund(movement="disbursement", source="central", amount="10000.00", final=True)
        assert r.json()["code"] == "project.final_payment_before_acceptance"
        await move(client, station, pid, "completed", on="2026-03-10")
        await move(client, station, pid, "accepted", on="2026-03-10", acceptance_team="验收组", acceptance_result="合格")
        r = await fund(movement="disbursement", source="central", amount="10000.00", final=True, payee_kind="bidder")
        assert r.status_code == 201, r.text
        r = await fund(movement="disbursement", source="central", amount="0.01")
        assert r.json()["code"] == "project.final_payment_made"

        got = (await client.get(f"/projects/{pid}/funds", headers=station)).json()
        assert (got["budget"], got["allocated"], got["disbursed"]) == ("100000.00", "100000.00", "100000.00")
        assert [(i["movement"], i["amount"], i["final"]) for i in got["items"]] == [
            ("allocation", "60000.00", False), ("allocation", "40000.00", False),
            ("disbursement", "90000.00", False), ("disbursement", "10000.00", True),
        ]
        from sqlalchemy import select

        from fupin.ledger.models import LedgerAccount

        async with owner_sessionmaker() as session:
            assert (await ledger.check(session)).ok
            balances = dict((await session.execute(
                select(LedgerAccount.holder_kind, LedgerAccount.balance).where(LedgerAccount.holder_ref == pid)
            )).all())
            assert balances == {"project": Decimal("0.00"), "implementer": Decimal("100000.00")}

    async def test_disbursement_cannot_exceed_allocated_money(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1, budget={"county": "5000.00"})
        await _tie(client, station, owner_sessionmaker, p["id"], county.villages[t1][0])
        await advance_to(client, station, p["id"], "approved")
        r = await client.post(f"/projects/{p['id']}/funds", headers=admin, json={
            "movement": "allocation", "source": "county", "amount": "1000.00", "effective_on": "2026-04-01"})
        assert r.status_code == 201
        r = await client.post(f"/projects/{p['id']}/funds", headers=admin, json={
            "movement": "disbursement", "source": "county", "amount": "1000.01", "effective_on": "2026-04-02"})
        assert r.json()["code"] == "project.insufficient_funds"

    async def test_station_may_not_move_money(self, client, owner_sessionmaker, test_settings):
        _county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        r = await client.post(f"/projects/{p['id']}/funds", headers=station, json={
            "movement": "allocation", "source": "central", "amount": "1.00", "effective_on": "2026-04-01"})
        assert r.status_code == 403


class TestAreaScope:
    async def test_other_township_gets_404_and_sees_nothing(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        t2 = county.townships[1]
        other = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t2)
        p = await create_project(client, station, t1)
        hid = await _tie(client, station, owner_sessionmaker, p["id"], county.villages[t1][0])
        for path in ("", "/transitions", "/bids", "/progress", "/beneficiaries", "/funds", "/notices"):
            r = await client.get(f"/projects/{p['id']}{path}", headers=other)
            assert r.status_code == 404, path
        r = await move(client, other, p["id"], "in_library")
        assert r.status_code == 404
        assert (await client.get("/projects", headers=other)).json()["items"] == []
        assert (await client.get("/reports/project-funds", headers=other)).json() == {"items": [], "next_cursor": None}
        assert (await client.get(f"/households/{hid}/projects", headers=other)).status_code == 404
        r = await client.post("/projects", headers=other, json={
            "name": "x", "kind": "文化", "year": 2026, "department": "d", "implementing_unit": "u",
            "area_code": t1, "budget": {}})
        assert r.status_code == 404
        # and the owner county still sees it
        assert (await client.get(f"/projects/{p['id']}", headers=admin)).status_code == 200

    async def test_household_of_another_township_cannot_be_tied(self, client, owner_sessionmaker, test_settings):
        county, t1, _admin, station = await _setup(owner_sessionmaker, test_settings)
        p = await create_project(client, station, t1)
        foreign = await make_household(owner_sessionmaker, village=county.villages[county.townships[1]][0])
        r = await client.post(f"/projects/{p['id']}/beneficiaries", headers=station, json={
            "households": [{"household_id": str(foreign), "kind": "cash", "amount": "1.00"}]})
        assert r.status_code == 404


class TestHouseholdView:
    async def test_lists_projects_benefiting_the_household(self, client, owner_sessionmaker, test_settings):
        county, t1, admin, station = await _setup(owner_sessionmaker, test_settings)
        village = county.villages[t1][0]
        hid = await make_household(owner_sessionmaker, village=village)
        a = await create_project(client, station, t1, kind="产业", name="藏香猪代养", year=2025)
        b = await create_project(client, admin, county.code, kind="基础设施/组组通道路", name="组组通道路", year=2026)
        await create_project(client, station, t1, name="无关项目")
        for pid, kind, amount in ((a["id"], "dividends", "1000.00"), (b["id"], "infrastructure", "0.00")):
            r = await client.post(f"/projects/{pid}/beneficiaries", headers=admin, json={
                "households": [{"household_id": str(hid), "kind": kind, "amount": amount}]})
            assert r.status_code == 201, r.text
        rows = (await client.get(f"/households/{hid}/projects", headers=admin)).json()["items"]
        assert [(r["name"], r["benefit_kind"], r["amount"]) for r in rows] == [
            ("组组通道路", "infrastructure", "0.00"), ("藏香猪代养", "dividends", "1000.00")
        ]
        b_read = (await client.get(f"/projects/{b['id']}", headers=admin)).json()
        assert b_read["villages"] == [village]
        assert b_read["townships"] == [t1]
        # the township station sees its own project; the county's is outside its scope
        rows = (await client.get(f"/households/{hid}/projects", headers=station)).json()["items"]
        assert [r["name"] for r in rows] == ["藏香猪代养"]
        # the library of the township includes the county project covering it, for the county
        lib = (await client.get("/projects", headers=admin, params={"area_code": t1})).json()["items"]
        assert {x["name"] for x in lib} == {"藏香猪代养", "组组通道路", "无关项目"}
