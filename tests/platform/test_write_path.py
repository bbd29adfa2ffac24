"""A 2xx means committed: a commit that fails is never acknowledged, and an object a client was told
exists can be read at once, over real HTTP and under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select, text

from fupin.audit.models import AuditEvent
from fupin.auth.roles import Role
from fupin.households.models import Household
from tests.factories import County, new_county, token_for
from tests.households.factories import household_body
from tests.live import live_api

FAILING_HEAD = "提交即失败"


@pytest.fixture
async def failing_commit(owner_sessionmaker) -> AsyncIterator[None]:
    """A deferred constraint trigger that refuses, at COMMIT only, a household whose head is FAILING_HEAD:
    every statement of the request succeeds and only the commit fails."""
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text(f"""
            CREATE OR REPLACE FUNCTION fupin_test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.head_name = '{FAILING_HEAD}' THEN
                RAISE EXCEPTION 'injected failure at commit' USING ERRCODE = TG_ARGV[0];
              END IF;
              RETURN NULL;
            END $$"""))
    yield
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("DROP TRIGGER IF EXISTS household_fail_at_commit ON household"))
        await s.execute(text("DROP FUNCTION IF EXISTS fupin_test_fail_at_commit()"))


async def _arm(owner_sessionmaker, sqlstate: str) -> None:
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("DROP TRIGGER IF EXISTS household_fail_at_commit ON household"))
        await s.execute(text(
            "CREATE CONSTRAINT TRIGGER household_fail_at_commit AFTER INSERT ON household "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            f"EXECUTE FUNCTION fupin_test_fail_at_commit('{sqlstate}')"
        ))


@pytest.mark.parametrize(("sqlstate", "status", "code"), [
    ("40001", 409, "conflict.concurrent"),  # serialization failure: the client may retry
    ("23514", 409, "conflict.integrity"),  # a deferred check
    ("57P01", 503, "service.database_unavailable"),  # the server shutting down under the commit
])
async def test_a_commit_that_fails_is_never_acknowledged_and_leaves_nothing(
    client, owner_sessionmaker, test_settings, failing_commit, sqlstate, status, code
):
    await _arm(owner_sessionmaker, sqlstate)
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    village = county.villages[county.townships[0]][0]
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village)
    body = household_body(village, head_name=FAILING_HEAD)
    r = await client.post("/households", headers=hdr, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    if status == 503:
        assert int(r.headers["retry-after"]) > 0
    async with owner_sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Household).where(
            Household.household_no == body["household_no"], Household.area_code == village)) == 0
        assert await s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.area_code == village, AuditEvent.entity == "household")) == 0
    # The same request without the failure goes through: nothing half-written blocks it.
    r = await client.post("/households", headers=hdr, json={**body, "head_name": "张三"})
    assert r.status_code == 201, r.text


@pytest.mark.slow
def test_two_thousand_create_then_read_pairs_at_fifty_concurrency_find_every_object(owner_sessionmaker_sync):
    """Over real HTTP (uvicorn), a client that reads right after its 201 always finds the object."""
    county, headers = owner_sessionmaker_sync
    village = county.villages[county.townships[0]][0]
    pairs, concurrency = 2000, 50

    async def drive(base: str) -> list[str]:
        missing: list[str] = []
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as http:

            async def pair() -> None:
                async with sem:
                    created = await http.post("/households", json=household_body(village))
                    assert created.status_code == 201, created.text
                    hid = created.json()["id"]
                    read = await http.get(f"/households/{hid}")
                    if read.status_code != 200:
                        missing.append(f"{hid}: {read.status_code}")

            await asyncio.gather(*(pair() for _ in range(pairs)))
        return missing

    # 50 clients share the server's 20 pooled connections: they wait their turn (a busy CI machine may make
    # that long) rather than getting 503 after the default 5 s.
    with live_api({"FUPIN_DB_POOL_TIMEOUT": "120"}) as base:
        missing = asyncio.run(drive(base))
    assert missing == []


@pytest.fixture
def owner_sessionmaker_sync(test_settings) -> tuple[County, dict[str, str]]:
    """A county and a village committee token, made on a loop of their own (the test drives its own loop)."""
    from fupin.db import make_engine, make_sessionmaker

    async def arrange() -> tuple[County, dict[str, str]]:
        engine = make_engine(test_settings.database_url, name="write-path-setup", pool_size=1)
        sm = make_sessionmaker(engine)
        county = await new_county(sm, townships=1, villages=1)
        village = county.villages[county.townships[0]][0]
        hdr = await token_for(sm, test_settings, role=Role.village_committee, area_code=village)
        await engine.dispose()
        return county, hdr

    return asyncio.run(arrange())
