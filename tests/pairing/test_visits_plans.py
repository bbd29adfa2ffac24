"""Visits and help plans: who may record, on-behalf marking, cadre confinement to their own households."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import new_county, token_for
from tests.pairing.factories import admin, cadre_user, make_household, pair, post, unit_and_cadres


async def _two_cadres(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    u1, tok1 = await cadre_user(owner_sessionmaker, test_settings, county.code)
    u2, tok2 = await cadre_user(owner_sessionmaker, test_settings, county.code)
    _, (c1, c2) = await unit_and_cadres(client, office, county.code, 2, user_ids=[u1, u2])
    village = county.villages[county.townships[0]][0]
    h1 = await make_household(owner_sessionmaker, village)
    h2 = await make_household(owner_sessionmaker, village)
    await pair(client, office, c1, h1)
    await pair(client, office, c2, h2)
    return county, office, (c1, tok1, h1), (c2, tok2, h2)


VISIT = {"visit_date": "2026-08-12", "kind": "routine", "findings": "两不愁三保障已落实", "measures": "发展养殖",
         "photo_refs": ["oss://visits/1.jpg"]}


async def test_a_cadre_records_and_sees_only_their_own_households(client, owner_sessionmaker, test_settings):
    county, _, (c1, tok1, h1), (_, tok2, h2) = await _two_cadres(client, owner_sessionmaker, test_settings)
    v1 = await post(client, "/visits", tok1, {**VISIT, "household_id": h1})
    assert v1["cadre_id"] == c1
    assert v1["on_behalf"] is False
    v2 = await post(client, "/visits", tok2, {**VISIT, "household_id": h2})

    # cadre 1 cannot read cadre 2's household data, nor write to it
    assert (await client.get(f"/visits/{v2['id']}", headers=tok1)).status_code == 404
    assert [v["id"] for v in (await client.get("/visits", headers=tok1)).json()["items"]] == [v1["id"]]
    r = await client.post("/visits", headers=tok1, json={**VISIT, "household_id": h2})
    assert r.status_code == 404
    assert [p["household_id"] for p in (await client.get("/pairings", headers=tok1)).json()["items"]] == [h1]
    plan2 = await post(client, "/help-plans", tok2, {"household_id": h2, "year": 2026})
    assert (await client.get(f"/help-plans/{plan2['id']}", headers=tok1)).status_code == 404
    r = await client.post(f"/help-plans/{plan2['id']}/measures", headers=tok1,
                          json={"kind": "产业", "description": "x"})
    assert r.status_code == 404
    assert (await client.get("/help-plans", headers=tok1)).json()["items"] == []
    # and cadres do not run area reports
    r = await client.get("/reports/pairing-coverage", headers=tok1, params={"area": county.code})
    assert r.status_code == 403


async def test_station_records_on_behalf_of_the_paired_cadre(client, owner_sessionmaker, test_settings):
    county, _, (c1, _, h1), (c2, _, _) = await _two_cadres(client, owner_sessionmaker, test_settings)
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station,
                              area_code=county.townships[0])
    r = await client.post("/visits", headers=station, json={**VISIT, "household_id": h1})
    assert r.json()["code"] == "visit.cadre_required"
    r = await client.post("/visits", headers=station, json={**VISIT, "household_id": h1, "cadre_id": c2})
    assert r.json()["code"] == "visit.cadre_not_paired"
    r = await client.post("/visits", headers=station, json={**VISIT, "household_id": h1, "cadre_id": c1,
                                                           "visit_date": "2099-01-01"})
    assert r.json()["code"] == "visit.future_date"
    r = await client.post("/visits", headers=station, json={**VISIT, "household_id": h1, "cadre_id": c1,
                                                           "visit_date": "2025-12-31"})
    assert r.json()["code"] == "visit.cadre_not_paired"  # the pairing starts 2026-01-01
    v = await post(client, "/visits", station, {**VISIT, "household_id": h1, "cadre_id": c1, "kind": "condolence"})
    assert (v["cadre_id"], v["on_behalf"], v["kind"]) == (c1, True, "condolence")

    # another township's station sees neither the household's visits nor can it record one
    station_b = await token_for(owner_sessionmaker, test_settings, role=Role.township_station,
                                area_code=county.townships[1])
    assert (await client.get(f"/visits/{v['id']}", headers=station_b)).status_code == 404
    assert (await client.get("/visits", headers=station_b)).json()["items"] == []
    r = await client.post("/visits", headers=station_b, json={**VISIT, "household_id": h1, "cadre_id": c1})
    assert r.status_code == 404


async def test_help_plan_with_measures_and_exact_funds(client, owner_sessionmaker, test_settings):
    _, _, (c1, tok1, h1), _ = await _two_cadres(client, owner_sessionmaker, test_settings)
    plan = await post(client, "/help-plans", tok1, {"household_id": h1, "year": 2026, "measures": [
        {"kind": "产业", "description": "养殖能繁母猪1头", "funds": "10000.00", "target_date": "2026-06-30"},
        {"kind": "教育", "description": "雨露计划", "funds": "3000.10"},
    ]})
    assert plan["cadre_id"] == c1
    assert plan["total_funds"] == "13000.10"
    assert [m["funds"] for m in plan["measures"]] == ["10000.00", "3000.10"]
    plan = await post(client, f"/help-plans/{plan['id']}/measures", tok1,
                      {"kind": "就业", "description": "公益性岗位", "funds": "0.01"})
    assert plan["total_funds"] == "13000.11"
    m0 = plan["measures"][0]["id"]
    r = await client.patch(f"/help-plans/{plan['id']}/measures/{m0}", headers=tok1, json={"status": "cancelled"})
    assert r.status_code == 200
    assert r.json()["total_funds"] == "3000.11"

    r = await client.post("/help-plans", headers=tok1, json={"household_id": h1, "year": 2026})
    assert (r.status_code, r.json()["code"]) == (409, "plan.exists")
    for bad in (0.1, "1.001", "-1", "NaN"):
        r = await client.post(f"/help-plans/{plan['id']}/measures", headers=tok1,
                              json={"kind": "金融", "description": "x", "funds": bad})
        assert r.status_code == 422, bad
    r = await client.post(f"/help-plans/{plan['id']}/measures", headers=tok1,
                          json={"kind": "不存在", "description": "x"})
    assert r.status_code == 422
