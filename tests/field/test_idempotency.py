"""Idempotency-Key on writes: a retry replays the first answer and writes nothing; another body with the
same key, and a retry while the first still runs, are refused; keys are per caller and expire."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import func, select, text, update

from fupin.db import unit_of_work
from fupin.idempotency import service
from fupin.idempotency.models import IdempotencyKey
from fupin.pairing.models import Visit
from tests.factories import new_county
from tests.pairing.factories import admin, cadre_user, make_household, pair, unit_and_cadres

VISIT = {"visit_date": "2026-08-12", "kind": "routine", "findings": "两不愁三保障已落实", "measures": "发展养殖"}


async def _cadre_with_household(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    user_id, token = await cadre_user(owner_sessionmaker, test_settings, county.code)
    _, (cadre,) = await unit_and_cadres(client, office, county.code, 1, user_ids=[user_id])
    village = county.villages[county.townships[0]][0]
    household = await make_household(owner_sessionmaker, village)
    await pair(client, office, cadre, household)
    return user_id, token, household, office


async def _visits(sm, household: str) -> int:
    async with sm() as session:
        return int(await session.scalar(select(func.count()).select_from(Visit).where(
            Visit.household_id == uuid.UUID(household))) or 0)


class TestReplay:
    async def test_a_retry_with_the_same_key_gets_the_first_answer_and_writes_nothing(
        self, client, owner_sessionmaker, test_settings
    ):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        headers = {**token, "Idempotency-Key": str(uuid.uuid4())}
        body = {**VISIT, "household_id": household}
        first = await client.post("/visits", headers=headers, json=body)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        # the retry carries the same fields in another order and spacing: the same request
        reordered = json.dumps(dict(reversed(list(body.items()))), indent=1, ensure_ascii=False)
        retry = await client.post("/visits", headers={**headers, "Content-Type": "application/json"},
                                  content=reordered.encode())
        assert retry.status_code == 201
        assert retry.content == first.content
        assert retry.headers["content-type"] == first.headers["content-type"]
        assert retry.headers["idempotent-replayed"] == "true"
        assert await _visits(owner_sessionmaker, household) == 1

    async def test_the_same_key_with_another_body_is_refused(self, client, owner_sessionmaker, test_settings):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        headers = {**token, "Idempotency-Key": "k-" + uuid.uuid4().hex}
        assert (await client.post("/visits", headers=headers, json={**VISIT, "household_id": household})
                ).status_code == 201
        r = await client.post("/visits", headers=headers,
                              json={**VISIT, "household_id": household, "findings": "另一次走访"})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "idempotency.key_reused"
        assert r.json()["detail_zh"]
        # the same key on another route is another request too
        r = await client.post("/help-plans", headers=headers, json={"household_id": household, "year": 2026})
        assert r.json()["code"] == "idempotency.key_reused"
        assert await _visits(owner_sessionmaker, household) == 1

    async def test_concurrent_retries_create_one_object(self, client, owner_sessionmaker, test_settings):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        headers = {**token, "Idempotency-Key": str(uuid.uuid4())}
        body = {**VISIT, "household_id": household}
        answers = await asyncio.gather(*(client.post("/visits", headers=headers, json=body) for _ in range(4)))
        assert {r.status_code for r in answers} <= {201, 409}
        created = [r for r in answers if r.status_code == 201]
        assert created
        assert len({r.content for r in created}) == 1
        for r in answers:
            if r.status_code == 409:
                assert r.json()["code"] == "idempotency.in_flight"
        assert await _visits(owner_sessionmaker, household) == 1
        late = await client.post("/visits", headers=headers, json=body)
        assert (late.status_code, late.content) == (201, created[0].content)

    async def test_a_retry_while_the_first_runs_is_409_with_retry_after(
        self, client, owner_sessionmaker, test_settings
    ):
        user_id, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        key = str(uuid.uuid4())
        # Another transaction holds the key exactly as a running request with it does.
        async with owner_sessionmaker() as other, other.begin():
            await other.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                {"k": f"user:{user_id} {key}"})
            r = await client.post("/visits", headers={**token, "Idempotency-Key": key},
                                  json={**VISIT, "household_id": household})
        assert r.status_code == 409
        assert r.json()["code"] == "idempotency.in_flight"
        assert r.headers["retry-after"] == "1"
        assert await _visits(owner_sessionmaker, household) == 0
        r = await client.post("/visits", headers={**token, "Idempotency-Key": key},
                              json={**VISIT, "household_id": household})
        assert r.status_code == 201


class TestScope:
    async def test_keys_are_per_caller(self, client, owner_sessionmaker, test_settings):
        _, token, household, office = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        key = str(uuid.uuid4())
        mine = await client.post("/visits", headers={**token, "Idempotency-Key": key},
                                 json={**VISIT, "household_id": household})
        assert mine.status_code == 201
        # the office uses the same key for its own request: not a retry of the cadre's
        r = await client.post("/helping-units", headers={**office, "Idempotency-Key": key},
                              json={"area_code": mine.json()["area_code"][:6] + "000000", "name": "县教育局",
                                    "kind": "bureau"})
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers

    async def test_a_refused_write_keeps_no_key(self, client, owner_sessionmaker, test_settings):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        headers = {**token, "Idempotency-Key": str(uuid.uuid4())}
        r = await client.post("/visits", headers=headers,
                              json={**VISIT, "household_id": household, "visit_date": "2099-01-01"})
        assert r.json()["code"] == "visit.future_date"
        # nothing committed, so the corrected request may use the key
        r = await client.post("/visits", headers=headers, json={**VISIT, "household_id": household})
        assert r.status_code == 201
        assert "idempotent-replayed" not in r.headers

    async def test_stored_answers_are_area_scoped_by_rls(self, client, owner_sessionmaker, app_sessionmaker,
                                                         test_settings):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        key = str(uuid.uuid4())
        r = await client.post("/visits", headers={**token, "Idempotency-Key": key},
                              json={**VISIT, "household_id": household})
        area = r.json()["area_code"][:6] + "000000"  # the cadre's county
        other = await new_county(owner_sessionmaker)
        async with unit_of_work(app_sessionmaker, scope=other.code[:6] + "%") as session:
            assert await session.scalar(select(IdempotencyKey.key).where(IdempotencyKey.key == key)) is None
        async with unit_of_work(app_sessionmaker, scope=area[:6] + "%") as session:
            assert await session.scalar(select(IdempotencyKey.key).where(IdempotencyKey.key == key)) == key


class TestExpiry:
    async def test_an_expired_key_runs_again_and_the_purge_deletes_expired_keys(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        _, token, household, _ = await _cadre_with_household(client, owner_sessionmaker, test_settings)
        key = str(uuid.uuid4())
        headers = {**token, "Idempotency-Key": key}
        body = {**VISIT, "household_id": household}
        assert (await client.post("/visits", headers=headers, json=body)).status_code == 201
        async with owner_sessionmaker() as session, session.begin():
            await session.execute(update(IdempotencyKey).where(IdempotencyKey.key == key).values(
                expires_at=func.now() - text("interval '1 second'")))
        again = await client.post("/visits", headers=headers, json=body)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert await _visits(owner_sessionmaker, household) == 2
        # the key was taken afresh: replayed now, with the second answer
        replay = await client.post("/visits", headers=headers, json=body)
        assert (replay.headers.get("idempotent-replayed"), replay.content) == ("true", again.content)

        async with owner_sessionmaker() as session, session.begin():
            await session.execute(update(IdempotencyKey).where(IdempotencyKey.key == key).values(
                expires_at=func.now() - text("interval '1 second'")))
        async with unit_of_work(app_sessionmaker) as session:
            while await service.purge_expired(session, batch=100) == 100:
                pass
        async with owner_sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(IdempotencyKey).where(
                IdempotencyKey.key == key)) == 0


class TestEveryWrite:
    # No caller to scope a key to yet: the login, and the refresh and logout (the refresh token is the
    # credential; a refresh is one-time by nature, a replay is refused as reuse).
    WITHOUT_KEY = frozenset({("post", "/auth/token"), ("post", "/auth/refresh"), ("post", "/auth/logout")})

    def test_every_write_route_documents_the_header(self, app):
        spec = app.openapi()
        missing = set()
        for path, operations in spec["paths"].items():
            for method, op in operations.items():
                if method.upper() not in ("POST", "PUT", "PATCH"):
                    continue
                params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
                if "Idempotency-Key" not in params:
                    missing.add((method, path))
                    continue
                assert params["Idempotency-Key"]["required"] is False
                assert "409" in op["responses"]
        assert missing == self.WITHOUT_KEY


class TestBulk:
    async def test_a_retried_bank_batch_replays_its_first_answer(self, client, owner_sessionmaker, world):
        from tests.loans.factories import make_bank, signed
        from tests.loans.test_bank import approved, disb

        bank = await make_bank(owner_sessionmaker, world.township)
        apps = [await approved(client, owner_sessionmaker, world) for _ in range(2)]
        payload = {"events": [disb(a, eid=f"d-{uuid.uuid4().hex[:8]}") for a in apps]}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body, headers = signed(bank, payload)
        first = await client.post("/bank/loan-events", content=body, headers={**headers, **key})
        assert first.status_code == 200, first.text
        assert [r["status"] for r in first.json()["results"]] == ["applied", "applied"]
        # a retry is signed afresh (another timestamp); the key makes it the same request
        body, headers = signed(bank, payload, ts=int(headers["X-Fupin-Timestamp"]) + 1)
        retry = await client.post("/bank/loan-events", content=body, headers={**headers, **key})
        assert (retry.status_code, retry.content) == (200, first.content)
        assert retry.headers["idempotent-replayed"] == "true"
        # another batch under the key is refused; another bank's identical key is its own
        body, headers = signed(bank, {"events": payload["events"][:1]})
        r = await client.post("/bank/loan-events", content=body, headers={**headers, **key})
        assert r.json()["code"] == "idempotency.key_reused"


async def test_the_worker_cron_purges_expired_keys_only(app_sessionmaker, owner_sessionmaker, test_settings):
    from fupin_worker.main import WorkerSettings, purge_idempotency_keys

    assert purge_idempotency_keys in [job.coroutine for job in WorkerSettings.cron_jobs]
    caller = f"user:{uuid.uuid4()}"
    async with owner_sessionmaker() as session, session.begin():
        for n, hours in enumerate((-2, -1, 5)):
            session.add(IdempotencyKey(area_code="110101000000", caller=caller, key=f"k{n}", fingerprint="0" * 64,
                                       method="POST", path="/visits", status_code=201, headers=[], body=b"{}",
                                       expires_at=func.now() + text(f"interval '{hours} hours'")))
    await purge_idempotency_keys({"sessionmaker": app_sessionmaker})
    async with owner_sessionmaker() as session:
        left = (await session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.caller == caller))).all()
    assert left == ["k2"]


class TestStreamedFile:
    async def test_a_retried_daily_file_replays_only_under_a_valid_signature(
        self, client, owner_sessionmaker, world
    ):
        from fupin.loans.models import BankBatch
        from tests.loans.factories import make_bank
        from tests.loans.test_bank import approved, disb
        from tests.loans.test_bank_files import _headers

        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        body = (json.dumps(disb(app_id, eid=f"f-{uuid.uuid4().hex[:8]}")) + "\n").encode()
        key = {"Idempotency-Key": str(uuid.uuid4())}
        media = "application/x-ndjson"
        first = await client.post("/bank/loan-event-files", content=body,
                                  headers={**_headers(bank, body, media=media), **key})
        assert first.status_code == 202, first.text
        retry = await client.post("/bank/loan-event-files", content=body,
                                  headers={**_headers(bank, body, media=media), **key})
        assert (retry.status_code, retry.content) == (202, first.content)
        assert (retry.headers["location"], retry.headers["idempotent-replayed"]) == (first.headers["location"], "true")
        # a forged retry learns nothing: the body is checked under the signature before any replay
        forged = await client.post("/bank/loan-event-files", content=body,
                                   headers={**_headers(bank, body, media=media, secret="not-the-secret"), **key})
        assert (forged.status_code, forged.json()["code"]) == (401, "bank.bad_signature")
        other = body.replace(b"10000.00", b"9000.00")
        r = await client.post("/bank/loan-event-files", content=other,
                              headers={**_headers(bank, other, media=media), **key})
        assert r.json()["code"] == "idempotency.key_reused"
        async with owner_sessionmaker() as session:
            files = await session.scalar(select(func.count()).select_from(BankBatch).where(
                BankBatch.client_id == bank.client_id))
        assert files == 1
