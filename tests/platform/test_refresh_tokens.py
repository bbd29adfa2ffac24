"""Refresh tokens (issue 14): a login starts a session whose refresh token rotates on every use, works once,
is stored only as a hash, and ends on reuse, logout, password change, deactivation and expiry."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, text

from fupin.auth.roles import Role
from tests.factories import login, new_county, new_user, token_for


async def _session_row(owner_sessionmaker, token: str):
    sid = token.partition(".")[0]
    async with owner_sessionmaker() as s:
        return (await s.execute(text(
            "SELECT token_hash, generation, revoked_at, revoked_reason FROM refresh_session WHERE id = CAST(:i AS uuid)"
        ), {"i": sid})).one()


async def _refresh(client, token: str):
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def _user(owner_sessionmaker, role: Role = Role.township_station):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    return county, await new_user(owner_sessionmaker, role=role, area_code=county.townships[0])


class TestRotation:
    async def test_a_refresh_answers_a_working_pair_and_spends_the_old_token(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        first = (await login(client, username)).json()
        assert first["refresh_expires_in"] > first["expires_in"] > 0

        r = await _refresh(client, first["refresh_token"])
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        # Same session, next generation, a different stored hash.
        assert second["refresh_token"].partition(".")[0] == first["refresh_token"].partition(".")[0]
        assert (await client.get("/me", headers={"Authorization": f"Bearer {second['access_token']}"})).json()[
            "username"] == username
        row = await _session_row(owner_sessionmaker, second["refresh_token"])
        assert row.generation == 1
        assert row.revoked_at is None

        third = await _refresh(client, second["refresh_token"])
        assert third.status_code == 200, third.text

    async def test_only_the_hash_of_the_secret_is_stored(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        token = (await login(client, username)).json()["refresh_token"]
        secret = token.partition(".")[2]
        row = await _session_row(owner_sessionmaker, token)
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        async with owner_sessionmaker() as s:
            dump = await s.scalar(text("SELECT string_agg(t::text, '') FROM refresh_session t"))
        assert secret not in dump

    async def test_reusing_a_spent_token_revokes_the_whole_session(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        spent = (await login(client, username)).json()["refresh_token"]
        latest = (await _refresh(client, spent)).json()["refresh_token"]

        r = await _refresh(client, spent)  # a stolen copy, or the owner's retry: nobody can tell
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "auth.refresh_reused"
        # The revocation was committed although the request failed: the legitimate latest token is dead too.
        assert (await _session_row(owner_sessionmaker, latest)).revoked_reason == "reused"
        r = await _refresh(client, latest)
        assert r.status_code == 401
        assert r.json()["code"] == "auth.invalid_refresh_token"

    async def test_another_login_is_another_session_untouched_by_the_revocation(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        phone = (await login(client, username)).json()["refresh_token"]
        laptop = (await login(client, username)).json()["refresh_token"]
        await _refresh(client, phone)
        assert (await _refresh(client, phone)).status_code == 401  # phone's session revoked
        assert (await _refresh(client, laptop)).status_code == 200

    async def test_malformed_and_unknown_tokens_are_401(self, client):
        for token in ("x", "not-a-uuid.secret", "3f0c1d9e-6a1b-4c55-9a57-1b1e4cf0e2aa.secret", "."):
            r = await _refresh(client, token)
            assert r.status_code == 401, (token, r.text)
            assert r.json()["code"] == "auth.invalid_refresh_token"
        assert (await client.post("/auth/refresh", json={})).status_code == 422

    async def test_an_expired_session_is_refused(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        token = (await login(client, username)).json()["refresh_token"]
        async with owner_sessionmaker() as s, s.begin():
            await s.execute(text("UPDATE refresh_session SET expires_at = now() - interval '1 second' "
                                 "WHERE id = CAST(:i AS uuid)"), {"i": token.partition(".")[0]})
        r = await _refresh(client, token)
        assert r.status_code == 401
        assert r.json()["code"] == "auth.invalid_refresh_token"


class TestEnding:
    async def test_logout_ends_the_session_and_is_idempotent(self, client, owner_sessionmaker):
        _, username = await _user(owner_sessionmaker)
        token = (await login(client, username)).json()["refresh_token"]
        assert (await client.post("/auth/logout", json={"refresh_token": token})).status_code == 204
        assert (await _session_row(owner_sessionmaker, token)).revoked_reason == "logout"
        assert (await _refresh(client, token)).status_code == 401
        assert (await client.post("/auth/logout", json={"refresh_token": token})).status_code == 204
        assert (await client.post("/auth/logout", json={"refresh_token": "garbage"})).status_code == 204

    async def test_a_password_change_or_deactivation_revokes_every_session(
        self, client, owner_sessionmaker, test_settings
    ):
        county, username = await _user(owner_sessionmaker)
        admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        a = (await login(client, username)).json()["refresh_token"]
        b = (await login(client, username)).json()["refresh_token"]
        from fupin.auth.models import User

        async with owner_sessionmaker() as s:
            user_id = await s.scalar(select(User.id).where(User.username == username))
        r = await client.patch(f"/users/{user_id}", headers=admin, json={"password": "another-pass-123"})
        assert r.status_code == 200, r.text
        for token in (a, b):
            assert (await _session_row(owner_sessionmaker, token)).revoked_reason == "password_changed"
            assert (await _refresh(client, token)).status_code == 401

        c = (await login(client, username, "another-pass-123")).json()["refresh_token"]
        assert (await client.patch(f"/users/{user_id}", headers=admin, json={"active": False})).status_code == 200
        assert (await _session_row(owner_sessionmaker, c)).revoked_reason == "user_disabled"
        assert (await _refresh(client, c)).status_code == 401

    async def test_a_session_outlived_by_its_users_token_version_is_refused_and_ended(
        self, client, owner_sessionmaker
    ):
        """Belt and braces: a password changed outside the API (no revocation written) still ends the session."""
        _, username = await _user(owner_sessionmaker)
        token = (await login(client, username)).json()["refresh_token"]
        async with owner_sessionmaker() as s, s.begin():
            await s.execute(text("UPDATE app_user SET token_version = token_version + 1 WHERE username = :u"),
                            {"u": username})
        r = await _refresh(client, token)
        assert r.status_code == 401
        assert (await _session_row(owner_sessionmaker, token)).revoked_reason == "user_changed"


async def test_as_the_app_role_a_session_is_invisible_outside_its_users_area(
    client, owner_sessionmaker, app_sessionmaker
):
    county, username = await _user(owner_sessionmaker)
    other = await new_county(owner_sessionmaker, townships=1, villages=1)
    token = (await login(client, username)).json()["refresh_token"]
    sid = token.partition(".")[0]
    query = text("SELECT count(*) FROM refresh_session WHERE id = CAST(:i AS uuid)")
    async with app_sessionmaker() as s, s.begin():
        assert await s.scalar(query, {"i": sid}) == 0  # no scope: nothing
        await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": other.code[:6] + "%"})
        assert await s.scalar(query, {"i": sid}) == 0
        await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": county.code[:6] + "%"})
        assert await s.scalar(query, {"i": sid}) == 1
    async with app_sessionmaker() as s, s.begin():  # presenting the token shows exactly its row
        await s.execute(text("SELECT set_config('fupin.refresh_session', :i, true)"), {"i": sid})
        assert await s.scalar(text("SELECT count(*) FROM refresh_session")) == 1
