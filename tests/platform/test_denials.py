"""Refusals leave a trace in `access_denial`: who, role, route template, object, area, code, address,
collapsed per (actor, route, code, minute) so a flood adds to a count instead of rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fupin.audit import denials
from fupin.auth.roles import Role
from tests.factories import login, new_county, new_user, token_for
from tests.loans.factories import make_bank, signed


async def _rows(sm, actor: str | None = None, **where: str) -> list:
    clauses = " AND ".join([f"{k} = :{k}" for k in where] + (["actor = :actor"] if actor else [])) or "true"
    async with sm() as s:
        return list((await s.execute(text(f"SELECT * FROM access_denial WHERE {clauses} ORDER BY first_at"),
                                     {**where, **({"actor": actor} if actor else {})})).mappings())


async def _user_id(sm, username: str) -> uuid.UUID:
    async with sm() as s:
        return (await s.execute(text("SELECT id FROM app_user WHERE username = :u"), {"u": username})).scalar_one()


class TestDenialsAreRecorded:
    async def test_a_403_is_recorded_with_who_role_route_area_code_and_address(self, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.cadre, area_code=county.villages[county.townships[0]][0])
        token = (await login(client, username)).json()["access_token"]
        r = await client.get("/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403
        uid = await _user_id(owner_sessionmaker, username)
        [row] = await _rows(owner_sessionmaker, actor=f"user:{uid}")
        assert (row["status"], row["code"], row["method"], row["route"]) == (403, "auth.forbidden", "GET", "/users")
        assert (row["role"], row["actor_name"], row["actor_id"]) == ("cadre", username, uid)
        assert row["area_code"] == county.villages[county.townships[0]][0]
        assert row["county_code"] == county.code[:6]
        assert row["client_addrs"] == ["127.0.0.1"]
        assert row["count"] == 1

    async def test_a_404_on_another_countys_object_names_the_object_and_a_flood_is_one_row(
            self, client, owner_sessionmaker, test_settings):
        a = await new_county(owner_sessionmaker)
        b = await new_county(owner_sessionmaker)
        admin_a = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=a.code)
        prober = await new_user(owner_sessionmaker, role=Role.county_admin, area_code=b.code)
        token = (await login(client, prober)).json()["access_token"]
        run = (await client.post("/jobs/audit-verify", headers=admin_a)).json()
        headers = {"Authorization": f"Bearer {token}"}
        answers = await asyncio.gather(*(client.get(f"/jobs/{run['id']}", headers=headers) for _ in range(25)))
        assert {r.status_code for r in answers} == {404}
        # Another, unknown id in the same minute: same row, one more object named.
        other = uuid.uuid4()
        assert (await client.get(f"/jobs/{other}", headers=headers)).status_code == 404
        uid = await _user_id(owner_sessionmaker, prober)
        rows = await _rows(owner_sessionmaker, actor=f"user:{uid}")
        assert len(rows) == 1 or rows[0]["window_start"] != rows[-1]["window_start"]  # a minute may roll over
        assert sum(r["count"] for r in rows) == 26
        assert {o for r in rows for o in r["object_ids"]} == {str(run["id"]), str(other)}
        assert {r["route"] for r in rows} == {"/jobs/{run_id}"}
        assert {(r["code"], r["status"]) for r in rows} == {("job.not_found", 404)}

    async def test_failed_logins_count_on_the_user_or_on_the_address_when_the_name_is_unknown(
            self, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        assert (await login(client, username, "wrong password!")).status_code == 401
        uid = await _user_id(owner_sessionmaker, username)
        [row] = await _rows(owner_sessionmaker, actor=f"user:{uid}")
        assert (row["code"], row["route"], row["area_code"], row["role"]) == (
            "auth.bad_credentials", "/auth/token", county.code, "auditor")
        ghost = f"nobody-{uuid.uuid4().hex[:8]}"
        transport = httpx.ASGITransport(app=client._transport.app, client=("203.0.113.77", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            assert (await login(other, ghost, "whatever")).status_code == 401
        [row] = await _rows(owner_sessionmaker, actor="addr:203.0.113.77", code="auth.bad_credentials")
        assert ghost in row["object_ids"]
        assert (row["area_code"], row["role"], row["actor_id"]) == (denials.PLATFORM_AREA, "", None)

    async def test_a_bad_bank_signature_is_recorded_with_the_claimed_client(self, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        body, headers = signed(bank, {"event_id": "x"}, secret="not-the-secret")
        transport = httpx.ASGITransport(app=client._transport.app, client=("198.51.100.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            r = await other.post("/bank/loan-events", content=body, headers=headers)
        assert r.status_code == 401
        [row] = await _rows(owner_sessionmaker, actor="addr:198.51.100.9")
        assert (row["code"], row["route"], row["object_ids"]) == ("bank.bad_signature", "/bank/loan-events",
                                                                  [bank.client_id])

    async def test_missing_tokens_and_list_routes_without_ids_leave_no_trace(self, client, owner_sessionmaker):
        transport = httpx.ASGITransport(app=client._transport.app, client=("192.0.2.55", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            assert (await other.get("/areas")).status_code == 401
        assert await _rows(owner_sessionmaker, actor="addr:192.0.2.55") == []


class TestReadingDenials:
    async def test_auditors_read_their_own_areas_denials_only(self, client, owner_sessionmaker, test_settings):
        a = await new_county(owner_sessionmaker)
        b = await new_county(owner_sessionmaker)
        cadre_a = await token_for(owner_sessionmaker, test_settings, role=Role.cadre,
                                  area_code=a.villages[a.townships[0]][0])
        cadre_b = await token_for(owner_sessionmaker, test_settings, role=Role.cadre,
                                  area_code=b.villages[b.townships[0]][0])
        assert (await client.get("/users", headers=cadre_a)).status_code == 403
        assert (await client.get("/users", headers=cadre_b)).status_code == 403
        auditor_a = await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=a.code)
        r = await client.get("/access-denials", headers=auditor_a, params={"code": "auth.forbidden"})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items
        assert {i["area_code"][:6] for i in items} == {a.code[:6]}
        assert items[0]["route"] == "/users"
        assert items[0]["count"] == 1
        # A cadre may not read them (and that refusal is itself recorded).
        assert (await client.get("/access-denials", headers=cadre_a)).status_code == 403

    async def test_the_app_role_sees_no_denial_outside_its_scope(self, owner_sessionmaker, app_sessionmaker):
        a = await new_county(owner_sessionmaker)
        b = await new_county(owner_sessionmaker)
        denial = denials.Denial(status=403, code="auth.forbidden", method="GET", route="/users", actor="user:x",
                                actor_id=None, actor_name="x", role="cadre", area_code=a.townships[0],
                                object_id=None, client_addr=None, at=datetime.now(UTC))
        async with app_sessionmaker() as s, s.begin():
            await denials.record(s, denial)
        async with app_sessionmaker() as s, s.begin():
            await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": b.code[:6] + "%"})
            assert (await s.execute(text("SELECT count(*) FROM access_denial WHERE actor = 'user:x'"))).scalar() == 0
        async with app_sessionmaker() as s, s.begin():
            await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": a.code[:6] + "%"})
            assert (await s.execute(text(
                "SELECT count(*) FROM access_denial WHERE area_code = :a"), {"a": a.townships[0]})).scalar() == 1
        async with app_sessionmaker() as s, s.begin():
            await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": a.code[:6] + "%"})
            with pytest.raises(DBAPIError, match="permission denied"):  # the app cannot delete the trail
                await s.execute(text("DELETE FROM access_denial"))

