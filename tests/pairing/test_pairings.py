"""Pairing rules: each refusal, the per-county cap with effective dates, and atomic handover."""

from __future__ import annotations

from sqlalchemy import func, select

from fupin.audit.models import AuditEvent
from fupin.pairing.models import Pairing
from tests.factories import new_county
from tests.pairing.factories import admin, make_household, pair, post, set_household_status, unit_and_cadres


async def _setup(client, owner_sessionmaker, test_settings, cadres: int):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    _, ids = await unit_and_cadres(client, office, county.code, cadres)
    village = county.villages[county.townships[0]][0]
    return county, office, ids, village


async def test_assigning_a_retired_or_transferred_cadre_is_refused(client, owner_sessionmaker, test_settings):
    _, office, (c1, c2), village = await _setup(client, owner_sessionmaker, test_settings, 2)
    hh = await make_household(owner_sessionmaker, village)
    for cadre, status in ((c1, "retired"), (c2, "transferred")):
        await client.patch(f"/cadres/{cadre}", headers=office, json={"status": status})
        body = await pair(client, office, cadre, hh, status=422)
        assert body["code"] == "pairing.cadre_inactive"
        assert body["extra"]["status"] == status


async def test_ending_the_last_pairing_of_a_poor_household_needs_a_successor(client, owner_sessionmaker, test_settings):
    _, office, (c1, c2, c3), village = await _setup(client, owner_sessionmaker, test_settings, 3)
    hh = await make_household(owner_sessionmaker, village)
    p1 = await pair(client, office, c1, hh)
    end = {"end_date": "2026-06-30", "reason": "工作调整"}
    r = await client.post(f"/pairings/{p1['id']}/end", headers=office, json=end)
    assert r.status_code == 422
    assert r.json()["code"] == "pairing.would_orphan_household"
    assert (await client.get(f"/pairings/{p1['id']}", headers=office)).json()["end_date"] is None

    # naming the successor in the same request ends one and starts the other on the same day
    r = await client.post(f"/pairings/{p1['id']}/end", headers=office, json={**end, "successor_cadre_id": c2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ended"]["end_date"] == "2026-06-30"
    assert body["successor"]["cadre_id"] == c2
    assert body["successor"]["start_date"] == "2026-06-30"
    assert body["ended"]["successor_id"] == body["successor"]["id"]

    # with a second active cadre on the household, one pairing may end alone
    p3 = await pair(client, office, c3, hh, start="2026-07-01")
    r = await client.post(f"/pairings/{p3['id']}/end", headers=office, json={"end_date": "2026-08-01", "reason": "x"})
    assert r.status_code == 200
    assert r.json()["successor"] is None
    r = await client.post(f"/pairings/{p3['id']}/end", headers=office, json={"end_date": "2026-08-01", "reason": "x"})
    assert r.json()["code"] == "pairing.already_ended"


async def test_a_pairing_of_an_exited_household_ends_without_successor(client, owner_sessionmaker, test_settings):
    _, office, (c1,), village = await _setup(client, owner_sessionmaker, test_settings, 1)
    hh = await make_household(owner_sessionmaker, village)
    p1 = await pair(client, office, c1, hh)
    await set_household_status(owner_sessionmaker, hh, "exited")
    r = await client.post(f"/pairings/{p1['id']}/end", headers=office, json={"end_date": "2026-12-31", "reason": "脱贫"})
    assert r.status_code == 200, r.text


async def test_a_retired_cadres_household_is_orphaned_unless_another_active_cadre_remains(
    client, owner_sessionmaker, test_settings
):
    _, office, (c1, c2), village = await _setup(client, owner_sessionmaker, test_settings, 2)
    hh = await make_household(owner_sessionmaker, village)
    await pair(client, office, c1, hh)
    p2 = await pair(client, office, c2, hh)
    await client.patch(f"/cadres/{c1}", headers=office, json={"status": "retired"})
    # c1 still holds a pairing but is retired: ending c2's leaves no active cadre
    r = await client.post(f"/pairings/{p2['id']}/end", headers=office, json={"end_date": "2026-05-01", "reason": "x"})
    assert r.json()["code"] == "pairing.would_orphan_household"


async def test_cap_is_off_by_default_and_applies_from_its_effective_date(client, owner_sessionmaker, test_settings):
    county, office, (c1,), village = await _setup(client, owner_sessionmaker, test_settings, 1)
    households = [await make_household(owner_sessionmaker, village) for _ in range(4)]
    await pair(client, office, c1, households[0])
    await pair(client, office, c1, households[1])
    await pair(client, office, c1, households[2])  # no setting: no cap

    await post(client, "/pairing-settings", office, {"county_code": county.code, "effective_from": "2026-07-01",
                                                     "max_households_per_cadre": 3})
    # before the setting takes effect the old (uncapped) rule holds
    await pair(client, office, c1, households[3], start="2026-06-15")
    hh5 = await make_household(owner_sessionmaker, village)
    body = await pair(client, office, c1, hh5, start="2026-07-01", status=422)
    assert body["code"] == "pairing.cadre_at_capacity"
    assert body["extra"] == {"cadre_id": c1, "active": 4, "cap": 3}
    r = await client.get("/pairing-settings", headers=office, params={"county": county.code})
    assert [s["max_households_per_cadre"] for s in r.json()["items"]] == [3]
    # the same cadre cannot hold the same household twice at once
    body = await pair(client, office, c1, households[0], start="2026-06-01", status=409)
    assert body["code"] == "pairing.already_paired"


async def test_handover_moves_every_household_at_once(client, owner_sessionmaker, test_settings):
    _, office, (old, s1, s2), village = await _setup(client, owner_sessionmaker, test_settings, 3)
    h1, h2 = [await make_household(owner_sessionmaker, village) for _ in range(2)]
    h_exited = await make_household(owner_sessionmaker, village)
    for hh in (h1, h2, h_exited):
        await pair(client, office, old, hh)
    await set_household_status(owner_sessionmaker, h_exited, "exited")

    handover = {"handover_date": "2026-09-01", "reason": "退休",
                "items": [{"household_id": h1, "successor_cadre_id": s1}, {"household_id": h2, "successor_cadre_id": s2}]}
    r = await client.post(f"/cadres/{old}/handover", headers=office, json=handover)
    assert r.json()["code"] == "pairing.cadre_still_active"

    await client.patch(f"/cadres/{old}", headers=office, json={"status": "retired"})
    r = await client.post(f"/cadres/{old}/handover", headers=office, json={**handover, "items": handover["items"][:1]})
    assert r.json()["code"] == "pairing.would_orphan_household"
    assert r.json()["extra"]["household_ids"] == [h2]

    r = await client.post(f"/cadres/{old}/handover", headers=office, json=handover)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ended"] == 3
    assert sorted((p["household_id"], p["cadre_id"]) for p in body["created"]) == sorted([(h1, s1), (h2, s2)])
    r = await client.get("/pairings", headers=office, params={"cadre_id": old, "active": True})
    assert r.json()["items"] == []
    async with owner_sessionmaker() as s:
        actions = (await s.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == old))).all()
    assert actions.count("cadre.handover") == 1  # the two refused attempts left no audit row


async def test_handover_with_one_failing_item_changes_nothing(client, owner_sessionmaker, test_settings):
    _, office, (old, s1, s_retired), village = await _setup(client, owner_sessionmaker, test_settings, 3)
    h1, h2 = [await make_household(owner_sessionmaker, village) for _ in range(2)]
    for hh in (h1, h2):
        await pair(client, office, old, hh)
    await client.patch(f"/cadres/{old}", headers=office, json={"status": "transferred"})
    await client.patch(f"/cadres/{s_retired}", headers=office, json={"status": "retired"})

    async def snapshot():
        async with owner_sessionmaker() as s:
            rows = (await s.execute(select(Pairing.cadre_id, Pairing.household_id, Pairing.end_date).where(
                Pairing.household_id.in_([h1, h2])).order_by(Pairing.id))).all()
            total = await s.scalar(select(func.count()).select_from(Pairing))
        return rows, total

    before = await snapshot()
    # the first item is valid and is processed first; the second names a retired successor
    items = [{"household_id": h1, "successor_cadre_id": s1}, {"household_id": h2, "successor_cadre_id": s_retired}]
    r = await client.post(f"/cadres/{old}/handover", headers=office,
                          json={"handover_date": "2026-09-01", "reason": "调离", "items": items})
    assert r.status_code == 422
    assert r.json()["code"] == "pairing.cadre_inactive"
    assert await snapshot() == before
    r = await client.get("/pairings", headers=office, params={"cadre_id": old, "active": True})
    assert len(r.json()["items"]) == 2
    r = await client.get("/pairings", headers=office, params={"cadre_id": s1})
    assert r.json()["items"] == []


async def test_cross_township_pairings_are_404_and_absent(client, owner_sessionmaker, test_settings):
    from fupin.auth.roles import Role
    from tests.factories import token_for

    county, office, (c1,), _ = await _setup(client, owner_sessionmaker, test_settings, 1)
    t_b = county.townships[1]
    hh_b = await make_household(owner_sessionmaker, county.villages[t_b][0])
    p_b = await pair(client, office, c1, hh_b)
    station_a = await token_for(owner_sessionmaker, test_settings, role=Role.township_station,
                                area_code=county.townships[0])
    assert (await client.get(f"/pairings/{p_b['id']}", headers=station_a)).status_code == 404
    assert (await client.get("/pairings", headers=station_a)).json()["items"] == []
    assert (await client.get("/pairings", headers=office)).json()["items"][0]["id"] == p_b["id"]


async def test_exited_household_takes_no_new_cadre_and_successor_must_differ(client, owner_sessionmaker, test_settings):
    _, office, (c1, c2), village = await _setup(client, owner_sessionmaker, test_settings, 2)
    gone = await make_household(owner_sessionmaker, village, status="exited")
    assert (await pair(client, office, c1, gone, status=422))["code"] == "pairing.household_exited"
    hh = await make_household(owner_sessionmaker, village)
    p1 = await pair(client, office, c1, hh)
    r = await client.post(f"/pairings/{p1['id']}/end", headers=office,
                          json={"end_date": "2026-03-01", "reason": "x", "successor_cadre_id": c1})
    assert r.json()["code"] == "pairing.successor_is_same_cadre"
    r = await client.post(f"/pairings/{p1['id']}/end", headers=office,
                          json={"end_date": "2025-03-01", "reason": "x", "successor_cadre_id": c2})
    assert r.json()["code"] == "pairing.end_before_start"
