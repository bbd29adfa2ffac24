"""The risk workflow through the API: each step by its role, deadlines on working days (调休 counted),
overdue lists, the elimination rule at its boundary, a new cycle after elimination, routing to the
paired cadre, and another area's households answering 404."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.monitoring.factories import (
    R,
    cadre_with_user,
    exited_household,
    pair_before_exit,
    person_id,
    post,
    step,
    to_monitored,
    verification,
    warning_body,
)


async def _warned(client, world, on: str = "2026-09-24", **kw) -> dict:
    hh, _ = await exited_household(world.sm, world.village, **kw)
    warning = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(hh, on=on))
    return warning


async def _household(client, world, mh_id: str, **params) -> dict:
    r = await client.get(f"/monitored-households/{mh_id}", headers=world.h[R.poverty_office], params=params)
    assert r.status_code == 200, r.text
    return r.json()


class TestWarningOpensACycle:
    async def test_deadline_is_15_working_days_across_mid_autumn_national_day_and_a_make_up_saturday(
            self, client, world):
        # 2026-09-24 (Thu) + 15 working days: 25 Sep is 中秋, 1–7 Oct 国庆, Sat 10 Oct a make-up working day:
        # 28, 29, 30 Sep; 8, 9, 10, 12–16, 19–22 Oct → 2026-10-22 (10-23 if the Saturday were not counted).
        warning = await _warned(client, world)
        assert (warning["source"], warning["opened_cycle"], warning["cause"]) == ("self_report", True, "illness")
        mh = await _household(client, world, warning["monitored_household_id"])
        assert (mh["status"], mh["cycle"], mh["kind"], mh["decision_due_on"]) == (
            "warned", 1, "unstable_exited", "2026-10-22")
        assert len(mh["people"]) == 3

    async def test_a_second_warning_joins_the_open_cycle(self, client, world):
        hh, _ = await exited_household(world.sm, world.village)
        first = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(hh))
        second = await post(client, "/monitoring/warnings", world.h[R.township_station],
                            warning_body(hh, on="2026-09-30", cause="disaster", amount="12000.00"))
        assert second["monitored_household_id"] == first["monitored_household_id"]
        assert (second["opened_cycle"], second["cycle"], second["amount"]) == (False, 1, "12000.00")

    async def test_a_household_still_poor_or_a_future_date_is_refused(self, client, world):
        poor, _ = await exited_household(world.sm, world.village, status="registered")
        r = await client.post("/monitoring/warnings", headers=world.h[R.village_committee], json=warning_body(poor))
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.household_not_exited")
        hh, _ = await exited_household(world.sm, world.village)
        r = await client.post("/monitoring/warnings", headers=world.h[R.village_committee],
                              json=warning_body(hh, on="2099-01-01"))
        assert (r.status_code, r.json()["code"]) == (422, "monitoring.future_date")
        r = await client.post("/monitoring/warnings", headers=world.h[R.village_committee],
                              json=warning_body(hh, amount=1.5))
        assert (r.status_code, r.json()["code"]) == (422, "request.invalid")
        r = await client.post("/monitoring/warnings", headers=world.h[R.village_committee],
                              json=warning_body(hh, amount="1E+4"))
        assert r.status_code == 422

    async def test_finance_has_no_right_to_report(self, client, world):
        hh, _ = await exited_household(world.sm, world.village)
        r = await client.post("/monitoring/warnings", headers=world.h[R.finance_bureau], json=warning_body(hh))
        assert (r.status_code, r.json()["code"]) == (403, "auth.forbidden")


class TestSteps:
    async def test_each_step_by_its_role_in_order_with_findings(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        r = await client.post(f"/monitored-households/{mh_id}/steps", headers=world.h[R.township_station],
                              json={"step": "verify", "on": "2026-09-25", "verification": verification()})
        assert (r.status_code, r.json()["code"]) == (403, "monitoring.wrong_role")
        await step(client, world, mh_id, "village_review", "2026-09-25", status=409)
        await step(client, world, mh_id, "verify", "2026-09-25", status=422)  # findings missing
        await step(client, world, mh_id, "verify", "2026-09-23", status=422, verification=verification())  # before
        v = await step(client, world, mh_id, "verify", "2026-09-25", verification=verification("5999.99"))
        assert (v["details"]["income_risk"], v["details"]["expense_risk"], v["details"]["at_risk"]) == (
            True, False, True)
        assert v["details"]["rules"]["income_line"] == "6000.00"
        await step(client, world, mh_id, "village_review", "2026-09-28", opinion="评议通过")
        await step(client, world, mh_id, "township_check", "2026-09-29", opinion="属实")
        d = await step(client, world, mh_id, "decide_monitor", "2026-10-22", opinion="纳入监测")
        assert d["details"] == {"decided_late": False, "measure_due_on": "2026-11-12"}
        mh = await _household(client, world, mh_id)
        assert (mh["status"], mh["decided_on"], mh["income_per_capita"]) == ("monitored", "2026-10-22", "5999.99")
        history = (await client.get(f"/monitored-households/{mh_id}/steps", headers=world.h[R.village_committee])).json()["items"]
        assert [s["step"] for s in history] == ["open", "verify", "village_review", "township_check", "decide_monitor"]
        assert [s["role"] for s in history][1:] == ["village_committee", "village_committee", "township_station",
                                                    "poverty_office"]

    async def test_each_step_refuses_the_other_roles(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        await to_monitored(client, world, mh_id)
        cases = [("propose_elimination", R.township_station), ("propose_elimination", R.poverty_office),
                 ("decide_monitor", R.village_committee), ("township_check", R.poverty_office)]
        for name, role in cases:
            r = await client.post(f"/monitored-households/{mh_id}/steps", headers=world.h[role],
                                  json={"step": name, "on": "2026-10-10"})
            assert (r.status_code, r.json()["code"]) == (403, "monitoring.wrong_role"), (name, role)
        for role in (R.finance_bureau, R.auditor, R.credit_coop):
            r = await client.post(f"/monitored-households/{mh_id}/steps", headers=world.h[role],
                                  json={"step": "verify", "on": "2026-10-10"})
            assert (r.status_code, r.json()["code"]) == (403, "auth.forbidden")

    async def test_verification_at_the_line_and_at_half_income_finds_no_risk(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        v = await step(client, world, mh_id, "verify", "2026-09-25",
                       verification=verification("6000.00", persons=3, medical="9000.00"))
        assert (v["details"]["expense_threshold"], v["details"]["at_risk"]) == ("9000.00000000", False)

    async def test_a_late_decision_is_marked_and_a_return_needs_a_reason(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        await step(client, world, mh_id, "verify", "2026-09-25", verification=verification(drinking_water=False))
        await step(client, world, mh_id, "village_review", "2026-09-25")
        await step(client, world, mh_id, "township_return", "2026-09-28", status=422)
        await step(client, world, mh_id, "township_return", "2026-09-28", opinion="收入核算有误,重新核实")
        await step(client, world, mh_id, "verify", "2026-09-29", verification=verification("7000.00"))
        await step(client, world, mh_id, "village_review", "2026-09-29")
        await step(client, world, mh_id, "township_check", "2026-09-30")
        await step(client, world, mh_id, "decide_dismiss", "2026-10-23", status=422)  # no reason
        d = await step(client, world, mh_id, "decide_dismiss", "2026-10-23", opinion="收入稳定,无返贫风险")
        assert d["details"] == {"decided_late": True}  # one working day past 2026-10-22
        mh = await _household(client, world, mh_id)
        assert (mh["status"], mh["closed_on"]) == ("dismissed", "2026-10-23")


class TestOverdueLists:
    async def test_decision_and_measure_deadlines_on_working_days(self, client, world):
        undecided = (await _warned(client, world))["monitored_household_id"]
        monitored = (await _warned(client, world))["monitored_household_id"]
        await to_monitored(client, world, monitored, decide_on="2026-10-09")

        async def overdue(kind: str, as_of: str) -> set[str]:
            r = await client.get("/monitored-households", headers=world.h[R.township_station],
                                 params={"overdue": kind, "as_of": as_of, "area": world.village})
            return {x["id"] for x in r.json()["items"]}

        assert undecided not in await overdue("decision", "2026-10-22")
        assert undecided in await overdue("decision", "2026-10-23")
        # decided 2026-10-09 (Fri) + 15 working days, Sat 10-10 counted: → 2026-10-29
        mh = await _household(client, world, monitored)
        assert mh["measure_due_on"] == "2026-10-29"
        assert monitored not in await overdue("measures", "2026-10-29")
        assert monitored in await overdue("measures", "2026-10-30")
        body = {"kind": "medical_aid", "description": "申请医疗救助", "responsible_unit": "县医疗保障局",
                "started_on": "2026-10-29", "amount": "3000.00"}
        await post(client, f"/monitored-households/{monitored}/measures", world.h[R.village_committee], body)
        assert monitored not in await overdue("measures", "2026-10-30")

    async def test_a_measure_started_after_the_deadline_leaves_the_flag(self, client, world):
        monitored = (await _warned(client, world))["monitored_household_id"]
        await to_monitored(client, world, monitored, decide_on="2026-10-09")
        body = {"kind": "employment", "description": "公益岗位", "responsible_unit": "乡人社所",
                "started_on": "2026-10-30"}
        await post(client, f"/monitored-households/{monitored}/measures", world.h[R.township_station], body)
        assert (await _household(client, world, monitored, as_of="2026-11-02"))["measures_overdue"] is True

    async def test_measures_only_for_monitored_households(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        r = await client.post(f"/monitored-households/{mh_id}/measures", headers=world.h[R.village_committee],
                              json={"kind": "other", "description": "x", "responsible_unit": "村委会",
                                    "started_on": "2026-09-25"})
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.not_monitored")


class TestElimination:
    async def test_rule_at_its_boundary_then_eliminated_then_monitored_again(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        await to_monitored(client, world, mh_id, decide_on="2026-10-09")
        ok = {"income_per_capita": "6000.01", "stable_since": "2026-04-20",
              "checks": verification()["checks"]}
        r = await client.post(f"/monitored-households/{mh_id}/steps", headers=world.h[R.village_committee],
                              json={"step": "propose_elimination", "on": "2026-10-19", "elimination": ok})
        assert (r.status_code, r.json()["code"]) == (422, "monitoring.elimination_rule_not_met")
        assert r.json()["extra"]["reasons"] == ["not_long_enough_above_line"]
        at_line = {**ok, "income_per_capita": "6000.00"}
        r = await client.post(f"/monitored-households/{mh_id}/steps", headers=world.h[R.village_committee],
                              json={"step": "propose_elimination", "on": "2026-10-20", "elimination": at_line})
        assert r.json()["extra"]["reasons"] == ["income_not_above_line"]
        await step(client, world, mh_id, "propose_elimination", "2026-10-20", elimination=ok)
        await step(client, world, mh_id, "township_reject_elimination", "2026-10-21", opinion="收入证明不全")
        await step(client, world, mh_id, "propose_elimination", "2026-10-22", elimination=ok)
        await step(client, world, mh_id, "township_confirm_elimination", "2026-10-23")
        await step(client, world, mh_id, "reject_elimination", "2026-10-23", status=422)  # no reason
        await step(client, world, mh_id, "reject_elimination", "2026-10-23", opinion="再观察一个月")
        assert (await _household(client, world, mh_id))["stable_since"] is None
        await step(client, world, mh_id, "propose_elimination", "2026-10-23", elimination=ok)
        await step(client, world, mh_id, "decide_elimination", "2026-10-23", status=409)  # township first
        await step(client, world, mh_id, "township_confirm_elimination", "2026-10-23")
        await step(client, world, mh_id, "decide_elimination", "2026-10-26", opinion="风险消除")
        mh = await _household(client, world, mh_id)
        assert (mh["status"], mh["closed_on"], mh["stable_since"]) == ("eliminated", "2026-10-26", "2026-04-20")
        # Illness strikes again: a new cycle, the first one's history kept.
        again = await post(client, "/monitoring/warnings", world.h[R.village_committee],
                           {"source": "self_report", "monitored_household_id": mh_id, "cause": "accident",
                            "raised_on": "2026-11-02"})
        assert (again["cycle"], again["opened_cycle"]) == (2, True)
        mh = await _household(client, world, mh_id)
        # 2026-11-02 (Mon) + 15 working days → 2026-11-23
        assert (mh["status"], mh["cycle"], mh["cause"], mh["decision_due_on"], mh["closed_on"]) == (
            "warned", 2, "accident", "2026-11-23", None)
        history = (await client.get(f"/monitored-households/{mh_id}/steps", headers=world.h[R.poverty_office])).json()["items"]
        assert [(s["cycle"], s["step"]) for s in history][-2:] == [(1, "decide_elimination"), (2, "open")]
        assert len([s for s in history if s["cycle"] == 1]) == 13


class TestRoutingAndScope:
    async def test_a_cadre_visit_warning_goes_to_the_paired_cadre_only(self, client, world):
        cadre_id, cadre = await cadre_with_user(client, world)
        other_cadre_id, other = await cadre_with_user(client, world)
        hh, _ = await exited_household(world.sm, world.village)
        await pair_before_exit(world.sm, client, world, cadre_id, hh)
        visit = await post(client, "/visits", cadre, {"household_id": str(hh), "visit_date": "2026-09-23",
                                                     "kind": "routine", "findings": "户主确诊白血病"})
        r = await client.post("/monitoring/warnings", headers=cadre, json=warning_body(hh))
        assert (r.status_code, r.json()["code"]) == (403, "monitoring.wrong_source")
        r = await client.post("/monitoring/warnings", headers=cadre, json={**warning_body(hh), "source": "cadre_visit"})
        assert (r.status_code, r.json()["code"]) == (422, "monitoring.visit_required")
        w = await post(client, "/monitoring/warnings", cadre,
                       {**warning_body(hh), "source": "cadre_visit", "visit_id": visit["id"]})
        assert (w["cadre_id"], w["visit_id"]) == (cadre_id, visit["id"])
        mine = (await client.get("/monitoring/warnings", headers=cadre)).json()["items"]
        assert [x["id"] for x in mine] == [w["id"]]
        assert (await client.get("/monitoring/warnings", headers=other)).json()["items"] == []
        mh_id = w["monitored_household_id"]
        assert (await client.get(f"/monitored-households/{mh_id}", headers=cadre)).status_code == 200
        assert (await client.get(f"/monitored-households/{mh_id}", headers=other)).status_code == 404
        village = (await client.get("/monitoring/warnings", headers=world.h[R.village_committee])).json()["items"]
        assert w["id"] in [x["id"] for x in village]
        assert other_cadre_id != cadre_id

    async def test_an_exited_household_without_a_pairing_gets_a_named_cadre(self, client, world):
        cadre_id, cadre = await cadre_with_user(client, world)
        mh_id = (await _warned(client, world))["monitored_household_id"]
        url = f"/monitored-households/{mh_id}/cadre"
        body = {"cadre_id": cadre_id, "on": "2026-09-25"}
        assert (await client.put(url, headers=world.h[R.village_committee], json=body)).status_code == 403
        r = await client.put(url, headers=world.h[R.township_station], json=body)
        assert r.status_code == 200, r.text
        assert r.json()["cadre_id"] == cadre_id
        # the household is now the cadre's: visible to them, and the next warning is routed to them
        assert (await client.get(f"/monitored-households/{mh_id}", headers=cadre)).status_code == 200
        w = await post(client, "/monitoring/warnings", world.h[R.village_committee],
                       {"source": "self_report", "monitored_household_id": mh_id, "cause": "disaster",
                        "raised_on": "2026-09-26"})
        assert w["cadre_id"] == cadre_id
        r = await client.put(url, headers=world.h[R.township_station],
                             json={"cadre_id": str(uuid.uuid4()), "on": "2026-09-25"})
        assert r.status_code == 404
        await client.patch(f"/cadres/{cadre_id}", headers=world.h[R.poverty_office], json={"status": "retired"})
        other_id, _ = await cadre_with_user(client, world)
        await client.patch(f"/cadres/{other_id}", headers=world.h[R.poverty_office], json={"status": "retired"})
        r = await client.put(url, headers=world.h[R.township_station], json={"cadre_id": other_id, "on": "2026-09-25"})
        assert (r.status_code, r.json()["code"]) == (422, "pairing.cadre_inactive")
        paired, _ = await exited_household(world.sm, world.village)
        active_id, _ = await cadre_with_user(client, world)
        await pair_before_exit(world.sm, client, world, active_id, paired)
        mh2 = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(paired))
        r = await client.put(f"/monitored-households/{mh2['monitored_household_id']}/cadre",
                             headers=world.h[R.township_station], json={"cadre_id": other_id, "on": "2026-09-25"})
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.already_paired")

    async def test_the_county_cap_counts_pairings_and_monitored_households_together(self, client, world):
        await post(client, "/pairing-settings", world.h[R.poverty_office],
                   {"county_code": world.county.code, "effective_from": "2026-01-01", "max_households_per_cadre": 2})
        cadre_id, _ = await cadre_with_user(client, world)
        paired, _ = await exited_household(world.sm, world.village)
        await pair_before_exit(world.sm, client, world, cadre_id, paired)  # one pairing
        first = (await _warned(client, world))["monitored_household_id"]
        second = (await _warned(client, world))["monitored_household_id"]
        body = {"cadre_id": cadre_id, "on": "2026-09-25"}
        r = await client.put(f"/monitored-households/{first}/cadre", headers=world.h[R.poverty_office], json=body)
        assert r.status_code == 200, r.text
        r = await client.put(f"/monitored-households/{second}/cadre", headers=world.h[R.poverty_office], json=body)
        assert (r.status_code, r.json()["code"], r.json()["extra"]["active"]) == (422, "pairing.cadre_at_capacity", 2)

    async def test_another_areas_household_answers_404_everywhere(self, client, world):
        mh_id = (await _warned(client, world))["monitored_household_id"]
        neighbour = await world.header(R.village_committee, world.other_village)
        station2 = await world.header(R.township_station, world.other_township_village[:9] + "000")
        for headers in (neighbour, station2):
            assert (await client.get(f"/monitored-households/{mh_id}", headers=headers)).status_code == 404
            assert (await client.get(f"/monitored-households/{mh_id}/steps", headers=headers)).status_code == 404
            assert (await client.get(f"/monitored-households/{mh_id}/measures", headers=headers)).status_code == 404
            assert (await client.get("/monitored-households", headers=headers)).json()["items"] == []
            assert (await client.get("/monitoring/warnings", headers=headers)).json()["items"] == []
        r = await client.post(f"/monitored-households/{mh_id}/steps", headers=neighbour,
                              json={"step": "verify", "on": "2026-09-25", "verification": verification()})
        assert r.status_code == 404
        other_county = await world.header(R.poverty_office, "990199000000")
        assert (await client.get(f"/monitored-households/{mh_id}", headers=other_county)).status_code == 404


class TestHouseholdsOutsideTheRegistry:
    async def test_entered_just_for_monitoring_with_masked_ids(self, client, world):
        head, child = person_id(world.village), person_id(world.village)
        body = {"area_code": world.village, "kind": "marginal", "income_per_capita": "5200.00", "cause": "illness",
                "reported_on": "2026-09-24", "detail": "非贫低收入户,患急性淋巴细胞白血病",
                "persons": [{"name": "贾某", "id_number": head, "relation": "户主"},
                            {"name": "贾某某", "id_number": child, "relation": "子女"}]}
        mh = await post(client, "/monitored-households", world.h[R.village_committee], body)
        assert (mh["household_id"], mh["kind"], mh["status"], mh["persons"], mh["decision_due_on"]) == (
            None, "marginal", "warned", 2, "2026-10-22")
        assert [p["id_number"] for p in mh["people"]] == [head[:4] + "*" * 10 + head[-4:],
                                                           child[:4] + "*" * 10 + child[-4:]]
        full = await _household(client, world, mh["id"])  # the poverty office sees full numbers
        assert {p["id_number"] for p in full["people"]} == {head, child}
        r = await client.post("/monitored-households", headers=world.h[R.village_committee], json=body)
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.person_already_monitored")
        _, people = await exited_household(world.sm, world.village)
        registry_person = {**body, "persons": [{"name": "张三", "id_number": people[0][1], "relation": "户主"}]}
        r = await client.post("/monitored-households", headers=world.h[R.village_committee], json=registry_person)
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.person_in_registry")
        no_head = {**body, "persons": [{"name": "某", "id_number": person_id(world.village), "relation": "子女"}]}
        r = await client.post("/monitored-households", headers=world.h[R.village_committee], json=no_head)
        assert (r.status_code, r.json()["code"]) == (422, "monitoring.head_count")

    async def test_defaults_are_marked_until_the_county_sets_its_policy(self, client, world):
        params = {"area_code": world.village, "on": "2026-09-24"}
        r = (await client.get("/monitoring-policies/in-force", headers=world.h[R.village_committee],
                              params=params)).json()
        assert (r["source"], r["income_line"], r["expense_ratio"], r["decision_days"]) == (
            "default", "6000.00", "0.500000", 15)
        assert r["defaults_to_confirm"] == ["income_line", "expense_ratio", "decision_days", "elimination_months",
                                            "measure_days"]
        body = {"area_code": world.county.code, "effective_from": "2026-01-01", "income_line": "6500.00",
                "decision_days": 10}
        assert (await client.post("/monitoring-policies", headers=world.h[R.township_station],
                                  json=body)).status_code == 403
        policy = await post(client, "/monitoring-policies", world.h[R.poverty_office], body)
        assert (policy["expense_ratio"], policy["measure_days"]) == ("0.500000", 15)
        r = await client.post("/monitoring-policies", headers=world.h[R.poverty_office], json=body)
        assert (r.status_code, r.json()["code"]) == (409, "monitoring.policy_exists")
        r = (await client.get("/monitoring-policies/in-force", headers=world.h[R.village_committee],
                              params=params)).json()
        assert (r["source"], r["income_line"], r["defaults_to_confirm"], r["policy_id"]) == (
            "county", "6500.00", [], policy["id"])
        assert (await client.get("/monitoring-policies", headers=world.h[R.village_committee])).json()["items"]
        # the county's 10 working days now apply: 2026-09-24 → 2026-10-15
        warning = await _warned(client, world)
        assert (await _household(client, world, warning["monitored_household_id"]))["decision_due_on"] == "2026-10-15"
        other = await world.header(R.poverty_office, "990199000000")
        r = await client.get("/monitoring-policies/in-force", headers=other, params=params)
        assert r.status_code == 404
        assert Decimal(policy["income_line"]) == Decimal("6500")
