"""Offline batch sync: a batch sent twice records each item once; conflicts are refused item by item."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select, update

from fupin.pairing.models import HelpMeasure, Pairing, Visit
from tests.factories import new_county
from tests.pairing.factories import admin, cadre_user, make_household, pair, post, unit_and_cadres

RECORDED = "2026-08-12T18:30:00+08:00"


def visit_item(household: str, **kw):
    return {"type": "visit", "client_id": str(uuid.uuid4()), "recorded_at": RECORDED, "household_id": household,
            "visit_date": "2026-08-12", "kind": "routine", "findings": "两不愁三保障已落实", **kw}


async def _field(client, owner_sessionmaker, test_settings, households: int = 3):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    u1, tok1 = await cadre_user(owner_sessionmaker, test_settings, county.code)
    _, (c1, c2) = await unit_and_cadres(client, office, county.code, 2, user_ids=[u1])
    village = county.villages[county.townships[0]][0]
    hs = [await make_household(owner_sessionmaker, village) for _ in range(households)]
    pairings = [(await pair(client, office, c1, h))["id"] for h in hs]
    return county, office, tok1, (c1, c2), hs, pairings


async def _count(sm, model, ids) -> int:
    async with sm() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(
            model.id.in_([uuid.UUID(i) for i in ids]))) or 0)


class TestSyncTwice:
    async def test_a_batch_synced_twice_records_each_item_once(self, client, owner_sessionmaker, test_settings):
        _, _, tok, _, (h1, h2, _), _ = await _field(client, owner_sessionmaker, test_settings)
        plan = await post(client, "/help-plans", tok, {"household_id": h1, "year": 2026})
        items = [visit_item(h1), visit_item(h2, kind="condolence"),
                 {"type": "measure", "client_id": str(uuid.uuid4()), "recorded_at": RECORDED, "plan_id": plan["id"],
                  "kind": "产业", "description": "养殖肉牛 2 头", "funds": "3000.00"}]
        first = await post(client, "/field/sync", tok, {"device_id": "phone-1", "items": items}, 200)
        assert [r["status"] for r in first["results"]] == ["created"] * 3
        assert [r["id"] for r in first["results"]] == [i["client_id"] for i in items]
        assert (first["created"], first["already_synced"], first["refused"]) == (3, 0, 0)

        again = await post(client, "/field/sync", tok, {"device_id": "phone-1", "items": items}, 200)
        assert [r["status"] for r in again["results"]] == ["already_synced"] * 3
        assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
        visits = [i["client_id"] for i in items[:2]]
        assert await _count(owner_sessionmaker, Visit, visits) == 2
        assert await _count(owner_sessionmaker, HelpMeasure, [items[2]["client_id"]]) == 1
        v = (await client.get(f"/visits/{visits[1]}", headers=tok)).json()
        assert (v["kind"], v["household_id"]) == ("condolence", h2)
        async with owner_sessionmaker() as session:
            recorded = await session.scalar(select(Visit.client_recorded_at).where(Visit.id == uuid.UUID(visits[0])))
        assert recorded.isoformat() == "2026-08-12T10:30:00+00:00"

    async def test_an_item_repeated_in_one_batch_and_a_new_one_in_a_resent_batch(
        self, client, owner_sessionmaker, test_settings
    ):
        _, _, tok, _, (h1, h2, _), _ = await _field(client, owner_sessionmaker, test_settings)
        item = visit_item(h1)
        r = await post(client, "/field/sync", tok, {"items": [item, item]}, 200)
        assert [x["status"] for x in r["results"]] == ["created", "already_synced"]
        later = visit_item(h2)
        r = await post(client, "/field/sync", tok, {"items": [item, later]}, 200)
        assert [x["status"] for x in r["results"]] == ["already_synced", "created"]

    async def test_an_id_of_another_users_record_is_refused(self, client, owner_sessionmaker, test_settings):
        _, office, tok, (c1, _), (h1, h2, _), _ = await _field(client, owner_sessionmaker, test_settings)
        v = visit_item(h1)
        await post(client, "/field/sync", tok, {"items": [v]}, 200)
        # the office's phone made the same id: not the cadre's visit acknowledged, not a second visit
        r = await post(client, "/field/sync", office, {"items": [{**v, "household_id": h2, "cadre_id": c1}]}, 200)
        assert (r["results"][0]["status"], r["results"][0]["code"]) == ("refused", "sync.id_taken")
        assert await _count(owner_sessionmaker, Visit, [v["client_id"]]) == 1


class TestConflicts:
    async def test_conflicts_are_refused_per_item_and_the_rest_is_recorded(
        self, client, owner_sessionmaker, test_settings
    ):
        _, office, tok, (_, c2), (h1, h2, h3), (p1, p2, _) = await _field(client, owner_sessionmaker, test_settings)
        # while the cadre was offline: h1 handed to another cadre, the pairing with h2 ended
        r = await client.post(f"/pairings/{p1}/end", headers=office,
                              json={"end_date": "2026-08-13", "reason": "调整", "successor_cadre_id": c2})
        assert r.status_code == 200, r.text
        async with owner_sessionmaker() as session, session.begin():
            await session.execute(update(Pairing).where(Pairing.id == uuid.UUID(p2)).values(
                end_date=date(2026, 8, 13), end_reason="脱贫"))
        items = [visit_item(h1), visit_item(h2), visit_item(h3), visit_item(h3, visit_date="2099-01-01"),
                 visit_item(str(uuid.uuid4()))]
        r = await post(client, "/field/sync", tok, {"items": items}, 200)
        got = [(x["status"], x["code"]) for x in r["results"]]
        assert got == [("refused", "sync.household_transferred"), ("refused", "sync.pairing_ended"),
                       ("created", None), ("refused", "visit.future_date"), ("refused", "household.not_found")]
        assert r["results"][0]["detail_zh"]
        assert await _count(owner_sessionmaker, Visit, [i["client_id"] for i in items]) == 1
        # a refused item may be sent again once resolved elsewhere; it is still refused, never duplicated
        r = await post(client, "/field/sync", tok, {"items": items[:3]}, 200)
        assert [x["status"] for x in r["results"]] == ["refused", "refused", "already_synced"]

    async def test_a_measure_for_a_transferred_household_is_refused(self, client, owner_sessionmaker, test_settings):
        _, office, tok, (_, c2), (h1, _, _), (p1, _, _) = await _field(client, owner_sessionmaker, test_settings)
        plan = await post(client, "/help-plans", tok, {"household_id": h1, "year": 2026})
        r = await client.post(f"/pairings/{p1}/end", headers=office,
                              json={"end_date": "2026-08-13", "reason": "调整", "successor_cadre_id": c2})
        assert r.status_code == 200
        r = await post(client, "/field/sync", tok, {"items": [
            {"type": "measure", "client_id": str(uuid.uuid4()), "recorded_at": RECORDED, "plan_id": plan["id"],
             "kind": "产业", "description": "x"}]}, 200)
        assert r["results"][0]["code"] == "sync.household_transferred"
