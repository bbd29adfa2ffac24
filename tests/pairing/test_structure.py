"""Helping units, cadres, village assignments and work teams through the API."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import new_county, token_for
from tests.pairing.factories import admin, cadre_user, post, unit_and_cadres


async def test_units_and_cadres_form_a_county_directory(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    other = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    unit_id, cadres = await unit_and_cadres(client, office, county.code, 2)

    r = await client.post("/helping-units", headers=office,
                          json={"area_code": county.townships[0], "name": "乡中学", "kind": "school"})
    assert r.status_code == 422
    assert r.json()["code"] == "unit.area_not_county"

    # a township station reads its county's directory, but may not write it
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station,
                              area_code=county.townships[0])
    r = await client.get("/cadres", headers=station, params={"unit_id": unit_id})
    assert r.status_code == 200
    assert sorted(c["id"] for c in r.json()["items"]) == sorted(cadres)
    assert (await client.get(f"/helping-units/{unit_id}", headers=station)).status_code == 200
    r = await client.post("/cadres", headers=station, json={"unit_id": unit_id, "name": "x", "level": "county"})
    assert r.status_code == 403

    # another county sees nothing of it
    foreign = await admin(owner_sessionmaker, test_settings, other.code)
    assert (await client.get(f"/cadres/{cadres[0]}", headers=foreign)).status_code == 404
    assert (await client.get(f"/helping-units/{unit_id}", headers=foreign)).status_code == 404
    r = await client.get("/cadres", headers=foreign, params={"unit_id": unit_id})
    assert r.json()["items"] == []

    r = await client.patch(f"/cadres/{cadres[1]}", headers=office, json={"status": "retired"})
    assert r.status_code == 200
    assert r.json()["status"] == "retired"
    r = await client.get("/cadres", headers=office, params={"unit_id": unit_id, "status": "active"})
    assert [c["id"] for c in r.json()["items"]] == [cadres[0]]


async def test_cadre_links_only_to_a_user_with_role_cadre(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    unit = await post(client, "/helping-units", office, {"area_code": county.code, "name": "县医院", "kind": "other"})
    user_id, _ = await cadre_user(owner_sessionmaker, test_settings, county.code)
    body = {"unit_id": unit["id"], "name": "张三", "level": "county", "user_id": user_id}
    assert (await post(client, "/cadres", office, body))["user_id"] == user_id
    r = await client.post("/cadres", headers=office, json={**body, "name": "李四"})
    assert r.status_code == 409
    assert r.json()["code"] == "cadre.user_taken"


async def test_village_assignments_and_work_teams(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    unit_id, cadres = await unit_and_cadres(client, office, county.code, 3)
    t_a, t_b = county.townships
    v_a, v_b = county.villages[t_a][0], county.villages[t_b][0]

    a = await post(client, "/village-assignments", office,
                   {"unit_id": unit_id, "village_code": v_a, "lead": True, "start_date": "2026-01-01"})
    await post(client, "/village-assignments", office, {"unit_id": unit_id, "village_code": v_b,
                                                        "start_date": "2026-01-01"})
    r = await client.post("/village-assignments", headers=office, json={
        "unit_id": unit_id, "village_code": v_a, "start_date": "2026-03-01", "end_date": "2026-02-01"})
    assert r.json()["code"] == "pairing.end_before_start"
    team = await post(client, "/work-teams", office, {
        "village_code": v_b, "unit_id": unit_id, "first_secretary_id": cadres[0], "leader_id": cadres[1],
        "member_ids": [cadres[2]], "start_date": "2026-02-01"})
    assert team["member_ids"] == [cadres[2]]

    # cross-township: station A sees A's assignment, not B's team or assignment
    station_a = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t_a)
    r = await client.get("/village-assignments", headers=station_a)
    assert [x["id"] for x in r.json()["items"]] == [a["id"]]
    assert (await client.get(f"/work-teams/{team['id']}", headers=station_a)).status_code == 404
    assert (await client.get("/work-teams", headers=station_a)).json()["items"] == []

    # a retired cadre is not stationed
    await client.patch(f"/cadres/{cadres[2]}", headers=office, json={"status": "transferred"})
    r = await client.post("/work-teams", headers=office, json={
        "village_code": v_a, "first_secretary_id": cadres[2], "start_date": "2026-02-01"})
    assert r.status_code == 422
    assert r.json()["code"] == "pairing.cadre_inactive"
