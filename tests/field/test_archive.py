"""Completeness of the household archive (一户一档): the county's required list, what each household lacks,
and the share of complete archives per village."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import new_county, token_for
from tests.field.photos import jpeg
from tests.field.test_documents import upload
from tests.pairing.factories import admin, make_household, set_household_status


async def test_archive_completeness_per_household_and_per_village(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    township = county.townships[0]
    v1, v2 = county.villages[township]
    office = await admin(owner_sessionmaker, test_settings, county.code)
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
    clerk = {v: await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=v)
             for v in (v1, v2)}

    # before the county sets a list: the papers 000 L19 names
    r = await client.get(f"/archive/requirements/{county.code}", headers=station)
    assert r.json()["kinds"] == ["户口本", "粮补卡", "医疗服务证"]
    r = await client.put(f"/archive/requirements/{county.code}", headers=office, json={"kinds": ["户口本", "粮补卡"]})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["kinds"]) == ["户口本", "粮补卡"]
    r = await client.put(f"/archive/requirements/{county.code}", headers=station, json={"kinds": []})
    assert r.status_code == 403

    h1, h2, h3 = [await make_household(owner_sessionmaker, v1) for _ in range(3)]
    removed = await make_household(owner_sessionmaker, v1)
    await set_household_status(owner_sessionmaker, removed, "removed")  # no longer archived: not counted
    h4 = await make_household(owner_sessionmaker, v2)
    seed = iter(range(300, 400))
    for household, village, kinds in [(h1, v1, ["户口本", "粮补卡", "产业照片"]), (h2, v1, ["户口本", "户口本"]),
                                      (h4, v2, ["户口本", "粮补卡"])]:
        for kind in kinds:
            r = await upload(client, clerk[village], jpeg(seed=next(seed)), kind=kind, target_id=household)
            assert r.status_code == 201, r.text

    r = await client.get(f"/households/{h2}/archive", headers=clerk[v1])
    assert r.json() == {"household_id": h2, "required": ["户口本", "粮补卡"], "present": {"户口本": 2},
                        "missing": ["粮补卡"], "complete": False}
    assert (await client.get(f"/households/{h1}/archive", headers=clerk[v1])).json()["complete"] is True
    assert (await client.get(f"/households/{h1}/archive", headers=clerk[v2])).status_code == 404

    r = await client.get("/reports/archive-completeness", headers=station, params={"area": township})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["villages"] == [
        {"village": v1, "households": 3, "complete": 1, "share": "0.3333"},
        {"village": v2, "households": 1, "complete": 1, "share": "1.0000"},
    ]
    assert sorted((x["household_id"], tuple(x["missing"])) for x in report["incomplete"]) == sorted(
        [(h2, ("粮补卡",)), (h3, ("户口本", "粮补卡"))])
    # a village's committee may not run the report; another township sees none of it
    assert (await client.get("/reports/archive-completeness", headers=clerk[v1],
                             params={"area": v1})).status_code == 403
    other = await token_for(owner_sessionmaker, test_settings, role=Role.township_station,
                            area_code=county.townships[1])
    assert (await client.get("/reports/archive-completeness", headers=other,
                             params={"area": township})).status_code == 404
