"""Logins throttled per username and per client address, bank routes per bank client, failed bank
signatures per client address and per claimed client: N allowed, N+1
answered 429 with Retry-After and a stable code, allowed again in the next window. The throttle's clock
is moved by the test, so nothing depends on how fast this machine runs the requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from redis.asyncio import Redis

from fupin.auth.roles import Role
from fupin_api.throttle import Throttle
from tests.factories import login, new_county, new_user
from tests.loans.factories import make_bank, signed


class Clock:
    def __init__(self) -> None:
        # The start of a window (every test window divides an hour), at a random hour long ago, so no
        # other run's counters share its keys.
        self.now = float((100_000 + uuid.uuid4().int % 10**6) * 3600)

    def __call__(self) -> float:
        return self.now


@contextmanager
def throttled(app, settings, **limits: int) -> Iterator[Clock]:
    clock = Clock()
    saved = app.state.throttle
    app.state.throttle = Throttle(saved.redis, settings.model_copy(update=limits), clock=clock)
    try:
        yield clock
    finally:
        app.state.throttle = saved


def client_at(app, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 5000)), base_url="http://test")


class TestLoginThrottle:
    async def test_per_user_n_allowed_n_plus_1_refused_then_allowed_in_the_next_window(
            self, app, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        with throttled(app, test_settings, login_rate_per_user=3, login_rate_window_seconds=60) as clock:
            clock.now += 15  # 45 s left in this window
            for _ in range(3):
                assert (await login(client, username)).status_code == 200
            r = await login(client, username)
            assert r.status_code == 429
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "auth.throttled"
            assert r.headers["Retry-After"] == "45"
            # Another user from the same address is not affected by this user's counter.
            other = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
            assert (await login(client, other)).status_code == 200
            clock.now += 45  # the next window
            assert (await login(client, username)).status_code == 200

    async def test_per_address_limit_holds_across_usernames_and_spares_other_addresses(
            self, app, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        names = [await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code) for _ in range(3)]
        with throttled(app, test_settings, login_rate_per_address=4, login_rate_window_seconds=10) as clock:
            async with client_at(app, "203.0.113.10") as attacker, client_at(app, "203.0.113.11") as bystander:
                # Wrong passwords for several users: the address pays for all of them.
                codes = [(await login(attacker, names[i % 3], "wrong-wrong")).status_code for i in range(4)]
                assert codes == [401, 401, 401, 401]
                r = await login(attacker, names[0])
                assert (r.status_code, r.json()["code"]) == (429, "auth.throttled")
                assert r.headers["Retry-After"] == "10"
                assert (await login(bystander, names[1])).status_code == 200
                clock.now += 10
                assert (await login(attacker, names[2])).status_code == 200

    async def test_a_throttled_login_does_not_check_the_password_nor_count_a_failure(
            self, app, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        with throttled(app, test_settings, login_rate_per_user=1, login_rate_window_seconds=60) as clock:
            assert (await login(client, username)).status_code == 200
            for _ in range(test_settings.login_max_failures + 1):
                assert (await login(client, username, "wrong-wrong")).status_code == 429
            clock.now += 60
            # Had the refused attempts reached the password check, the account would be locked now.
            assert (await login(client, username)).status_code == 200

    async def test_unreachable_redis_fails_open_and_the_lockout_still_holds(
            self, app, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        saved = app.state.throttle
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2)
        app.state.throttle = Throttle(dead, test_settings.model_copy(update={"login_rate_per_user": 1}))
        try:
            assert (await login(client, username)).status_code == 200
            assert (await login(client, username)).status_code == 200  # fail open: not counted
            for _ in range(test_settings.login_max_failures):
                assert (await login(client, username, "wrong-wrong")).status_code == 401
            r = await login(client, username)
            assert (r.status_code, r.json()["code"]) == (429, "auth.locked")
        finally:
            app.state.throttle = saved
            await dead.aclose()


class TestBankThrottle:
    async def test_per_client_limit_with_retry_after_and_other_clients_unaffected(
            self, app, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        other = await make_bank(owner_sessionmaker, county.townships[0])
        missing = str(uuid.uuid4())

        async def poll(b) -> httpx.Response:
            _, headers = signed(b, None)
            headers.pop("Content-Type")
            return await client.get(f"/bank/loan-event-files/{missing}",
                                    headers={**headers, "X-Fupin-Signature": _sig_empty(b, headers)})

        with throttled(app, test_settings, bank_rate_per_client=2, bank_rate_window_seconds=30) as clock:
            assert [(await poll(bank)).status_code for _ in range(2)] == [404, 404]
            r = await poll(bank)
            assert (r.status_code, r.json()["code"], r.headers["Retry-After"]) == (429, "bank.throttled", "30")
            assert (await poll(other)).status_code == 404
            clock.now += 30
            assert (await poll(bank)).status_code == 404

    async def test_bad_signatures_do_not_spend_a_banks_allowance(self, app, client, owner_sessionmaker,
                                                                 test_settings):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        with throttled(app, test_settings, bank_rate_per_client=1, bank_rate_window_seconds=30):
            for _ in range(3):
                body, headers = signed(bank, {"event_id": "x"}, secret="forged")
                assert (await client.post("/bank/loan-events", content=body, headers=headers)).status_code == 401
            body, headers = signed(bank, {"events": []})
            r = await client.post("/bank/loan-events", content=body, headers=headers)
            assert r.status_code != 429, r.text


class TestFailedSignatureThrottle:
    """Failed signatures are counted per client address and per claimed client; past either allowance the
    signed routes answer 429 before any signature is checked, a right one included, until the window ends."""

    @staticmethod
    async def poll(http: httpx.AsyncClient, bank, *, forged: bool = False) -> httpx.Response:
        _, headers = signed(bank, None)
        headers.pop("Content-Type")
        signature = "0" * 64 if forged else _sig_empty(bank, headers)
        return await http.get(f"/bank/loan-event-files/{uuid.uuid4()}", headers={**headers, "X-Fupin-Signature": signature})

    async def test_per_address_across_client_ids_and_other_addresses_unaffected(
            self, app, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        other = await make_bank(owner_sessionmaker, county.townships[0])
        with throttled(app, test_settings, bank_failures_per_address=3, bank_failure_window_seconds=300) as clock:
            clock.now += 100  # 200 s left in this window
            async with client_at(app, "203.0.113.20") as attacker, client_at(app, "203.0.113.21") as bystander:
                # Forged signatures under two client ids: the address pays for both.
                codes = [(await self.poll(attacker, (bank, other)[i % 2], forged=True)).status_code for i in range(3)]
                assert codes == [401, 401, 401]
                r = await self.poll(attacker, bank)  # even a right signature: nothing is checked any more
                # (the suite's per-client allowance is unlimited: this is the per-address one)
                assert (r.status_code, r.json()["code"], r.headers["Retry-After"]) == (429, "bank.throttled", "200")
                assert (await self.poll(bystander, bank)).status_code == 404  # the bank itself, elsewhere
                clock.now += 200
                assert (await self.poll(attacker, bank)).status_code == 404

    async def test_per_claimed_client_across_addresses(self, app, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        other = await make_bank(owner_sessionmaker, county.townships[0])
        with throttled(app, test_settings, bank_failures_per_client=2, bank_failure_window_seconds=60) as clock:
            for i in range(2):
                async with client_at(app, f"203.0.113.{30 + i}") as http:
                    assert (await self.poll(http, bank, forged=True)).status_code == 401
            async with client_at(app, "203.0.113.40") as http:
                r = await self.poll(http, bank)
                # (the suite's per-address allowance is unlimited: this is the per-client one)
                assert (r.status_code, r.json()["code"], r.headers["Retry-After"]) == (429, "bank.throttled", "60")
                assert (await self.poll(http, other)).status_code == 404
                clock.now += 60
                assert (await self.poll(http, bank)).status_code == 404

    async def test_stale_timestamps_count_and_right_signatures_do_not(self, app, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        bank = await make_bank(owner_sessionmaker, county.townships[0])
        with throttled(app, test_settings, bank_failures_per_address=2, bank_failure_window_seconds=60):
            async with client_at(app, "203.0.113.50") as http:
                for _ in range(5):  # successes are not failures: never throttled by this limit
                    assert (await self.poll(http, bank)).status_code == 404
                body, headers = signed(bank, {"events": []}, ts=1)
                for _ in range(2):
                    r = await http.post("/bank/loan-events", content=body, headers=headers)
                    assert (r.status_code, r.json()["code"]) == (401, "bank.stale_timestamp")
                assert (await self.poll(http, bank)).status_code == 429


def _sig_empty(bank, headers: dict[str, str]) -> str:
    import hashlib
    import hmac

    return hmac.new(bank.secret.encode(), headers["X-Fupin-Timestamp"].encode() + b".", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("path", ["/auth/token", "/bank/loan-events", "/bank/loan-event-files",
                                  "/bank/loan-event-files/{file_id}", "/bank/loan-event-files/{file_id}/results"])
def test_openapi_documents_429_with_retry_after(app, path: str) -> None:
    spec = app.openapi()
    for op in spec["paths"][path].values():
        assert "Retry-After" in op["responses"]["429"]["headers"]
