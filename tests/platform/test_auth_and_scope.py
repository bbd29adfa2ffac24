from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from fupin.auth.roles import Role
from tests.factories import PASSWORD, login, new_county, new_user, token_for


class TestToken:
    async def test_password_login_issues_a_token_that_opens_protected_routes(self, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.county_admin, area_code=county.code)
        r = await login(client, username)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = await client.get(f"/areas/{county.code}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert r.json()["level"] == "county"

    async def test_wrong_password_is_401_problem_json(self, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        r = await login(client, username, "wrong password!")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == "auth.bad_credentials"
        assert body["detail_zh"]

    async def test_repeated_failures_lock_the_account_with_retry_after(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        for _ in range(test_settings.login_max_failures):
            assert (await login(client, username, "nope-nope-nope")).status_code == 401
        r = await login(client, username)  # even the right password waits out the lockout
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0

    async def test_missing_token_is_401(self, client):
        r = await client.get("/areas")
        assert r.status_code == 401
        assert r.json()["code"] == "auth.missing_token"

    @pytest.mark.parametrize("mutation", ["alg_none", "wrong_key", "expired", "nbf_future", "no_exp", "garbage"])
    async def test_tampered_tokens_are_rejected(self, client, owner_sessionmaker, test_settings, mutation):
        county = await new_county(owner_sessionmaker)
        headers = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        good = headers["Authorization"].split()[1]
        claims = jwt.decode(good, test_settings.jwt_secret, algorithms=["HS256"])
        now = datetime.now(UTC)
        if mutation == "alg_none":
            bad = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
        elif mutation == "wrong_key":
            bad = jwt.encode(claims, "another-key-" + "y" * 32, algorithm="HS256")
        elif mutation == "expired":
            bad = jwt.encode({**claims, "exp": now - timedelta(seconds=1)}, test_settings.jwt_secret, algorithm="HS256")
        elif mutation == "nbf_future":
            bad = jwt.encode({**claims, "nbf": now + timedelta(hours=1)}, test_settings.jwt_secret, algorithm="HS256")
        elif mutation == "no_exp":
            bad = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, test_settings.jwt_secret, algorithm="HS256")
        else:
            bad = "not.a.jwt"
        r = await client.get(f"/areas/{county.code}", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401

    async def test_deactivated_user_token_stops_working_at_once(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        r = await client.post("/users", headers=admin, json={
            "username": "deact_me_" + county.code, "password": "password123", "role": "auditor",
            "area_code": county.code})
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        token = (await login(client, "deact_me_" + county.code, "password123")).json()["access_token"]
        hdr = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/areas", headers=hdr)).status_code == 200
        assert (await client.patch(f"/users/{user_id}", headers=admin, json={"active": False})).status_code == 200
        assert (await client.get("/areas", headers=hdr)).status_code == 401


class TestAreaScope:
    async def test_township_user_cannot_see_a_sibling_township(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=2)
        mine, other = county.townships
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=mine)
        assert (await client.get(f"/areas/{mine}", headers=hdr)).status_code == 200
        r = await client.get(f"/areas/{other}", headers=hdr)
        assert r.status_code == 404  # not 403: no existence oracle
        listed = (await client.get("/areas", headers=hdr, params={"limit": 500})).json()["items"]
        codes = {a["code"] for a in listed}
        assert codes == {mine, *county.villages[mine]}

    async def test_prefix_trap_codes_with_trailing_zeros_do_not_leak(self, client, owner_sessionmaker, test_settings):
        # Townships …100 and …110: stripping zeros would make "…1" a prefix of both.
        county = await new_county(owner_sessionmaker, townships=2, villages=2)
        t100 = county.townships[0]
        assert t100.endswith("100000")
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t100)
        listed = (await client.get("/areas", headers=hdr, params={"limit": 500})).json()["items"]
        assert all(a["code"].startswith(t100[:9]) for a in listed)

    async def test_role_without_write_right_gets_403(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=county.code)
        r = await client.post("/areas", headers=hdr, json={"code": county.code[:6] + "900000", "name": "x"})
        assert r.status_code == 403
        assert r.json()["code"] == "auth.forbidden"

    async def test_admin_cannot_create_area_outside_scope(self, client, owner_sessionmaker, test_settings):
        mine = await new_county(owner_sessionmaker)
        other = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=mine.code)
        r = await client.post("/areas", headers=hdr, json={"code": other.code[:6] + "900000", "name": "x"})
        assert r.status_code == 404


class TestPasswordHashMemory:
    async def test_at_most_one_argon2_hash_at_a_time_and_logins_still_answer(self, client, owner_sessionmaker,
                                                                            monkeypatch):
        """Each argon2 hash holds 64 MiB while it runs: four concurrent logins took the API's peak RSS to ~400
        MiB. Hashes now run on a pool of `HASH_CONCURRENCY` threads; six concurrent logins all answer, and
        never more than that many hashes overlap."""
        import asyncio
        import threading
        from typing import Any

        from argon2 import PasswordHasher

        from fupin.auth import service as auth_service

        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        names = [await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code) for _ in range(3)]
        running, most, lock = [0], [0], threading.Lock()

        class Counted(PasswordHasher):
            def verify(self, *args: Any) -> bool:
                with lock:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                try:
                    return super().verify(*args)
                finally:
                    with lock:
                        running[0] -= 1

        monkeypatch.setattr(auth_service, "_hasher", Counted())
        answers = await asyncio.gather(*(login(client, n, p) for n in names for p in (PASSWORD, "wrong password")))
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 401, 401, 401]
        assert most[0] == auth_service.HASH_CONCURRENCY == 1
