from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from fupin.auth.roles import Role
from tests.conftest import DISTRIBUTED
from tests.factories import new_county, token_for
from tests.households.factories import household_body, id_number, member


@pytest.fixture
async def county(owner_sessionmaker):
    return await new_county(owner_sessionmaker, townships=2, villages=2)


async def hdr(owner_sessionmaker, test_settings, role, area):
    return await token_for(owner_sessionmaker, test_settings, role=role, area_code=area)


async def create(client, headers, village, **kw):
    r = await client.post("/households", headers=headers, json=household_body(village, **kw))
    assert r.status_code == 201, r.text
    return r.json()


STEPS = [
    ("surveyed", Role.village_committee, {}),
    ("village_reviewed", Role.village_committee, {"notice_start": "2026-02-01", "notice_end": "2026-02-07"}),
    ("township_reviewed", Role.township_station, {"notice_start": "2026-02-10", "notice_end": "2026-02-16"}),
    ("county_announced", Role.poverty_office, {}),
    ("registered", Role.poverty_office, {}),
]
DATES = {"surveyed": "2026-01-20", "village_reviewed": "2026-02-08", "township_reviewed": "2026-02-17",
         "county_announced": "2026-03-01", "registered": "2026-03-10"}


class Actors:
    def __init__(self, sm, settings, county):
        self.sm, self.settings, self.county = sm, settings, county
        self.cache: dict[Role, dict[str, str]] = {}

    async def __call__(self, role: Role) -> dict[str, str]:
        if role not in self.cache:
            t = self.county.townships[0]
            area = {Role.village_committee: self.county.villages[t][0], Role.township_station: t}.get(
                role, self.county.code)
            self.cache[role] = await hdr(self.sm, self.settings, role, area)
        return self.cache[role]


async def register(client, actors, hid):
    for step, role, extra in STEPS:
        r = await client.post(f"/households/{hid}/transitions", headers=await actors(role),
                              json={"to": step, "on": DATES[step], **extra})
        assert r.status_code == 201, r.text


class TestWorkflow:
    async def test_every_identification_step_by_its_owner(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        village = county.villages[county.townships[0]][0]
        h = await create(client, await actors(Role.village_committee), village)
        assert h["status"] == "applied"
        await register(client, actors, h["id"])
        office = await actors(Role.poverty_office)
        got = (await client.get(f"/households/{h['id']}", headers=office)).json()
        assert got["status"] == "registered"
        assert got["year_identified"] == 2026
        steps = (await client.get(f"/households/{h['id']}/transitions", headers=office)).json()["items"]
        assert [s["to_status"] for s in steps] == ["applied", *(s for s, _, _ in STEPS)]
        assert [s["from_status"] for s in steps][1:] == ["applied", *(s for s, _, _ in STEPS[:-1])]
        vr = steps[2]
        assert (vr["notice_start"], vr["notice_end"], vr["actor_role"]) == ("2026-02-01", "2026-02-07", "village_committee")
        assert steps[3]["actor_role"] == "township_station"

    async def test_skipping_a_step_is_refused(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        village = county.villages[county.townships[0]][0]
        h = await create(client, await actors(Role.village_committee), village)
        r = await client.post(f"/households/{h['id']}/transitions", headers=await actors(Role.village_committee),
                              json={"to": "village_reviewed", "on": "2026-02-08",
                                    "notice_start": "2026-02-01", "notice_end": "2026-02-07"})
        assert r.status_code == 409
        assert r.json()["code"] == "household.step_out_of_order"
        r = await client.post(f"/households/{h['id']}/transitions", headers=await actors(Role.poverty_office),
                              json={"to": "registered", "on": "2026-02-08"})
        assert r.json()["code"] == "household.step_out_of_order"

    async def test_step_by_the_wrong_role_is_forbidden(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        village = county.villages[county.townships[0]][0]
        h = await create(client, await actors(Role.village_committee), village)
        r = await client.post(f"/households/{h['id']}/transitions", headers=await actors(Role.township_station),
                              json={"to": "surveyed", "on": "2026-01-20"})
        assert r.status_code == 403
        assert r.json()["code"] == "household.step_not_yours"

    async def test_notice_period_is_required_for_the_two_notices(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        vc = await actors(Role.village_committee)
        h = await create(client, vc, county.villages[county.townships[0]][0])
        await client.post(f"/households/{h['id']}/transitions", headers=vc, json={"to": "surveyed", "on": "2026-01-20"})
        r = await client.post(f"/households/{h['id']}/transitions", headers=vc,
                              json={"to": "village_reviewed", "on": "2026-02-08"})
        assert r.json()["code"] == "household.notice_period_required"

    async def test_rejection_ends_the_case_with_a_reason(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        vc = await actors(Role.village_committee)
        h = await create(client, vc, county.villages[county.townships[0]][0])
        await client.post(f"/households/{h['id']}/transitions", headers=vc, json={"to": "surveyed", "on": "2026-01-20"})
        r = await client.post(f"/households/{h['id']}/transitions", headers=vc, json={"to": "rejected", "on": "2026-01-25"})
        assert r.json()["code"] == "household.reason_required"
        r = await client.post(f"/households/{h['id']}/transitions", headers=vc,
                              json={"to": "rejected", "on": "2026-01-25", "reason": "收入高于标准"})
        assert r.status_code == 201, r.text
        r = await client.post(f"/households/{h['id']}/transitions", headers=vc,
                              json={"to": "village_reviewed", "on": "2026-02-08",
                                    "notice_start": "2026-02-01", "notice_end": "2026-02-07"})
        assert r.status_code == 409
        assert r.json()["code"] == "household.closed"
        # the members' ID numbers are free again
        again = household_body(county.villages[county.townships[0]][1])
        again["members"] = [member(id_number=m["id_number"], name=m["name"], relation=m["relation"])
                            for m in household_body(county.code)["members"]][:1]
        full = (await client.get(f"/households/{h['id']}", headers=await actors(Role.poverty_office))).json()
        again["members"][0]["id_number"] = full["members"][0]["id_number"]
        assert (await client.post("/households", headers=await actors(Role.township_station), json=again)).status_code == 201

    async def test_exit_return_and_removal(self, client, owner_sessionmaker, test_settings, county):
        actors = Actors(owner_sessionmaker, test_settings, county)
        h = await create(client, await actors(Role.village_committee), county.villages[county.townships[0]][0])
        await register(client, actors, h["id"])
        office = await actors(Role.poverty_office)
        url = f"/households/{h['id']}/transitions"
        r = await client.post(url, headers=office, json={"to": "exited", "on": "2026-10-01", "year": 2026,
                                                          "confirmations": {"food": True, "clothing": True}})
        assert r.json()["code"] == "household.exit_unconfirmed"
        assert set(r.json()["extra"]["missing"]) == {"education", "medical", "housing"}
        ok = dict.fromkeys(["food", "clothing", "education", "medical", "housing"], True)
        r = await client.post(url, headers=office, json={"to": "exited", "on": "2026-10-01", "confirmations": ok})
        assert r.json()["code"] == "household.exit_year_required"
        r = await client.post(url, headers=office, json={"to": "exited", "on": "2026-10-01", "year": 2026,
                                                          "confirmations": ok})
        assert r.status_code == 201, r.text
        assert (await client.get(f"/households/{h['id']}", headers=office)).json()["year_exited"] == 2026
        r = await client.post(url, headers=office, json={"to": "returned_to_poverty", "on": "2026-11-01",
                                                          "reason": "因病返贫"})
        assert r.status_code == 201, r.text
        r = await client.post(url, headers=office, json={"to": "removed", "on": "2026-11-02", "reason": "错评"})
        assert r.status_code == 201
        got = (await client.get(f"/households/{h['id']}", headers=office)).json()
        assert got["status"] == "removed"
        assert got["year_exited"] is None
        assert all(not m["active"] for m in got["members"])


class TestIdNumbersThroughTheApi:
    async def test_bad_check_digit_bad_date_and_legacy(self, client, owner_sessionmaker, test_settings, county):
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, county.villages[county.townships[0]][0])
        good = id_number()
        bad_check = good[:17] + ("0" if good[17] != "0" else "1")
        for raw, code in ((bad_check, "member.id_check_digit"), ("520201198002300012", "member.id_birth_date"),
                          ("520201800517001", "member.id_legacy_15")):
            body = household_body(county.villages[county.townships[0]][0], members=[member(id_number=raw)])
            r = await client.post("/households", headers=vc, json=body)
            assert r.status_code == 422, r.text
            assert r.json()["code"] == code

    async def test_given_sex_must_match(self, client, owner_sessionmaker, test_settings, county):
        village = county.villages[county.townships[0]][0]
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, village)
        body = household_body(village, members=[member(id_number=id_number(sex="M"), sex="F")])
        r = await client.post("/households", headers=vc, json=body)
        assert r.json()["code"] == "member.id_mismatch"

    async def test_duplicate_across_households_names_the_area_only_if_visible(
        self, client, owner_sessionmaker, test_settings, county
    ):
        t0, t1 = county.townships
        v0, v1 = county.villages[t0][0], county.villages[t1][0]
        st0 = await hdr(owner_sessionmaker, test_settings, Role.township_station, t0)
        st1 = await hdr(owner_sessionmaker, test_settings, Role.township_station, t1)
        office = await hdr(owner_sessionmaker, test_settings, Role.poverty_office, county.code)
        number = id_number()
        await create(client, st0, v0, members=[member(id_number=number)])
        r = await client.post("/households", headers=st1, json=household_body(v1, members=[member(id_number=number)]))
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "member.id_duplicate"
        assert "area_code" not in body["extra"]
        r = await client.post("/households", headers=office, json=household_body(v1, members=[member(id_number=number)]))
        assert r.status_code == 409
        assert r.json()["extra"]["area_code"] == v0
        # lowercase x is the same number
        x_number = next(n for n in (id_number() for _ in range(200)) if n.endswith("X"))
        await create(client, st0, v0, members=[member(id_number=x_number)])
        r = await client.post("/households", headers=st0,
                              json=household_body(county.villages[t0][1], members=[member(id_number=x_number.lower())]))
        assert r.status_code == 409


class TestMaskingAndScope:
    @pytest.mark.parametrize("role", [Role.poverty_office, Role.credit_coop, Role.township_station,
                                      Role.village_committee, Role.auditor, Role.cadre, Role.county_admin])
    async def test_masking_per_role(self, client, owner_sessionmaker, test_settings, county, role):
        t0 = county.townships[0]
        v0 = county.villages[t0][0]
        number = id_number()
        h = await create(client, await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0), v0,
                         members=[member(id_number=number)])
        area = {Role.village_committee: v0, Role.township_station: t0, Role.credit_coop: t0}.get(role, county.code)
        headers = await hdr(owner_sessionmaker, test_settings, role, area)
        shown = (await client.get(f"/households/{h['id']}", headers=headers)).json()["members"][0]["id_number"]
        if role in (Role.poverty_office, Role.credit_coop):
            assert shown == number
        else:
            assert shown == number[:4] + "*" * 10 + number[-4:]
        csv_text = (await client.get("/households/export", headers=headers,
                                     params={"format": "csv", "area": v0})).content.decode("utf-8-sig")
        assert (number in csv_text) == (role in (Role.poverty_office, Role.credit_coop))
        assert number[:4] + "*" * 10 + number[-4:] in csv_text or number in csv_text

    async def test_other_township_is_404_and_absent(self, client, owner_sessionmaker, test_settings, county):
        t0, t1 = county.townships
        v1 = county.villages[t1][0]
        theirs = await create(client, await hdr(owner_sessionmaker, test_settings, Role.township_station, t1), v1)
        mine = await create(client, await hdr(owner_sessionmaker, test_settings, Role.township_station, t0),
                            county.villages[t0][0])
        me = await hdr(owner_sessionmaker, test_settings, Role.township_station, t0)
        assert (await client.get(f"/households/{theirs['id']}", headers=me)).status_code == 404
        assert (await client.get(f"/households/{theirs['id']}/history", headers=me)).status_code == 404
        r = await client.post(f"/households/{theirs['id']}/transitions", headers=me,
                              json={"to": "township_reviewed", "on": "2026-02-17"})
        assert r.status_code == 404
        ids = {h["id"] for h in (await client.get("/households", headers=me, params={"limit": 500})).json()["items"]}
        assert mine["id"] in ids
        assert theirs["id"] not in ids
        assert (await client.get("/households", headers=me, params={"area": v1})).status_code == 404
        csv_text = (await client.get("/households/export", headers=me, params={"format": "csv"})).content.decode("utf-8-sig")
        assert mine["household_no"] in csv_text
        assert theirs["household_no"] not in csv_text
        assert (await client.get("/stats/households", headers=me, params={"area": t1})).status_code == 404
        assert (await client.get("/stats/households", headers=me, params={"area": t0})).json()["households"] == 1


class TestHistory:
    async def test_history_lists_every_change(self, client, owner_sessionmaker, test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0)
        h = await create(client, vc, v0)
        r = await client.patch(f"/households/{h['id']}", headers=vc, json={"income_per_capita": "3100.00"})
        assert r.status_code == 200
        assert r.json()["income_per_capita"] == "3100.00"
        r = await client.post(f"/households/{h['id']}/members", headers=vc,
                              json=[member("子女", name="张小", born=date(2010, 9, 1), in_school=True)])
        assert r.status_code == 201
        assert len(r.json()["members"]) == 3
        kinds = [e["kind"] for e in (await client.get(f"/households/{h['id']}/history", headers=vc)).json()["items"]]
        assert kinds == ["transition", "update", "member"]

    async def test_app_role_cannot_update_or_delete_history(self, client, owner_sessionmaker, app_sessionmaker,
                                                             test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        h = await create(client, await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0), v0)
        for sql in ("UPDATE household_event SET reason = 'x' WHERE household_id = :h",
                    "DELETE FROM household_event WHERE household_id = :h"):
            async with app_sessionmaker() as s, s.begin():
                await s.execute(text("SELECT set_config('fupin.scope', '%', true)"))
                with pytest.raises(Exception, match="permission denied"):
                    await s.execute(text(sql), {"h": h["id"]})
        if DISTRIBUTED:
            return  # Citus refuses triggers: there only the app role's privileges guard it (SCALING.md)
        async with owner_sessionmaker() as s, s.begin():  # even the owner hits the trigger
            with pytest.raises(Exception, match="append-only"):
                await s.execute(text("DELETE FROM household_event WHERE household_id = :h"), {"h": h["id"]})


class TestConcurrency:
    async def test_two_households_racing_for_one_id_number(self, client, owner_sessionmaker, test_settings, county):
        import asyncio

        t0, t1 = county.townships
        a = await hdr(owner_sessionmaker, test_settings, Role.township_station, t0)
        b = await hdr(owner_sessionmaker, test_settings, Role.township_station, t1)
        number = id_number()
        r1, r2 = await asyncio.gather(
            client.post("/households", headers=a, json=household_body(county.villages[t0][0],
                                                                      members=[member(id_number=number)])),
            client.post("/households", headers=b, json=household_body(county.villages[t1][0],
                                                                      members=[member(id_number=number)])),
        )
        assert sorted([r1.status_code, r2.status_code]) == [201, 409]
        loser = r1 if r1.status_code == 409 else r2
        assert loser.json()["code"] == "member.id_duplicate"


class TestMembersAndEdits:
    async def test_member_rules(self, client, owner_sessionmaker, test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0)
        h = await create(client, vc, v0)
        r = await client.post(f"/households/{h['id']}/members", headers=vc, json=[member("户主", name="第二户主")])
        assert r.json()["code"] == "household.head_count"
        head = next(m for m in h["members"] if m["relation"] == "户主")
        r = await client.patch(f"/households/{h['id']}/members/{head['id']}", headers=vc, json={"active": False})
        assert r.json()["code"] == "household.head_count"
        spouse = next(m for m in h["members"] if m["relation"] == "配偶")
        r = await client.patch(f"/households/{h['id']}/members/{spouse['id']}", headers=vc,
                               json={"labour": "lost", "disability": "肢体二级"})
        assert r.status_code == 200, r.text
        got = next(m for m in r.json()["members"] if m["id"] == spouse["id"])
        assert (got["labour"], got["disability"]) == ("lost", "肢体二级")

    async def test_readers_cannot_write(self, client, owner_sessionmaker, test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        auditor = await hdr(owner_sessionmaker, test_settings, Role.auditor, county.code)
        r = await client.post("/households", headers=auditor, json=household_body(v0))
        assert r.status_code == 403

    async def test_float_income_is_refused(self, client, owner_sessionmaker, test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0)
        r = await client.post("/households", headers=vc, json=household_body(v0, income_per_capita=2800.5))
        assert r.status_code == 422
        assert r.json()["code"] == "request.invalid"

    async def test_export_quotes_formula_like_text(self, client, owner_sessionmaker, test_settings, county):
        v0 = county.villages[county.townships[0]][0]
        vc = await hdr(owner_sessionmaker, test_settings, Role.village_committee, v0)
        await create(client, vc, v0, address="=HYPERLINK(\"http://x\")")
        text_csv = (await client.get("/households/export", headers=vc, params={"format": "csv"})).content.decode("utf-8-sig")
        assert "'=HYPERLINK" in text_csv

    async def test_history_rows_are_invisible_outside_scope_even_without_filters(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings, county
    ):
        t0, t1 = county.townships
        h = await create(client, await hdr(owner_sessionmaker, test_settings, Role.township_station, t1),
                         county.villages[t1][0])
        async with app_sessionmaker() as s, s.begin():
            await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": t0[:9] + "%"})
            n = await s.scalar(text("SELECT count(*) FROM household_event WHERE household_id = :h"), {"h": h["id"]})
        assert n == 0
