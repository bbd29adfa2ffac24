"""The database going away under traffic: every request is answered 503 with Retry-After (never 500,
never a 2xx for a write that did not commit), /readyz reports the outage, and the API recovers by itself.

The test runs its own PostgreSQL (pgserver, the embedded server `make run` uses) so it can stop and start
it without touching the machine's shared server."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select

from fupin.auth.roles import Role
from fupin.db import make_engine, make_sessionmaker
from fupin.households.models import Household
from fupin.migrate import upgrade
from fupin.settings import Settings
from tests.factories import new_county, token_for
from tests.households.factories import household_body
from tests.live import live_api

pytestmark = pytest.mark.slow


class PrivatePostgres:
    def __init__(self, data: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(data, cleanup_mode="delete")
        self.server.psql('CREATE DATABASE "fupin";')
        uri = urlparse(self.server.get_uri())
        host = parse_qs(uri.query).get("host", [""])[0]
        self.url = f"postgresql+asyncpg://{uri.username or 'postgres'}@/fupin?host={host}"

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def start(self) -> None:
        self.server.ensure_postgres_running()


async def _arrange(url: str, settings: Settings) -> tuple[str, dict[str, str]]:
    engine = make_engine(url, name="outage-setup", pool_size=1)
    try:
        sm = make_sessionmaker(engine)
        county = await new_county(sm, townships=1, villages=1)
        village = county.villages[county.townships[0]][0]
        return village, await token_for(sm, settings, role=Role.village_committee, area_code=village)
    finally:
        await engine.dispose()


async def _present(url: str, ids: list[str]) -> set[str]:
    engine = make_engine(url, name="outage-check", pool_size=1)
    try:
        async with make_sessionmaker(engine)() as s:
            found = (await s.scalars(select(Household.id).where(Household.id.in_([uuid.UUID(i) for i in ids])))).all()
        return {str(i) for i in found}
    finally:
        await engine.dispose()


def test_outage_answers_503_then_recovers_and_loses_no_acknowledged_write(tmp_path, test_settings):
    pg = PrivatePostgres(tmp_path / "pg")
    try:
        upgrade(pg.url)
        village, headers = asyncio.run(_arrange(pg.url, test_settings))
        env = {"FUPIN_DATABASE_URL": pg.url, "FUPIN_APP_DATABASE_URL": "", "FUPIN_DB_POOL_TIMEOUT": "2",
               "FUPIN_QUEUE_NAME": f"{test_settings.queue_name}:outage"}
        with live_api(env) as base:
            outcome = asyncio.run(_drive(base, headers, village, pg))
        acknowledged = outcome["created"]
        assert acknowledged, "no write succeeded at all"
        missing = set(acknowledged) - asyncio.run(_present(pg.url, acknowledged))
        assert missing == set(), f"acknowledged writes lost: {missing}"
    finally:
        pg.server.cleanup()
    statuses = outcome["statuses"]
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses.count(503) >= 1
    assert outcome["bad_503"] == []
    assert 503 in outcome["ready"]
    print(f"recovered {outcome['recovery']:.2f} s after the restart; {statuses.count(503)} answers 503")


async def _drive(base: str, headers: dict[str, str], village: str, pg: PrivatePostgres) -> dict[str, object]:
    statuses: list[int] = []
    created: list[str] = []
    bad_503: list[str] = []
    ready: list[int] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:

        async def one() -> None:
            r = await http.post("/households", json=household_body(village))
            statuses.append(r.status_code)
            if r.status_code == 201:
                created.append(r.json()["id"])
            elif r.status_code == 503 and not (r.headers.get("retry-after") and
                                               r.headers["content-type"] == "application/problem+json"):
                bad_503.append(r.text)
            r = await http.get(f"/areas/{village}")
            statuses.append(r.status_code)

        for _ in range(10):
            await one()
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, pg.stop)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline or not stopping.done():
            await asyncio.gather(*(one() for _ in range(5)))
            ready.append((await http.get("/readyz")).status_code)
        await stopping
        for _ in range(5):  # fully down
            await one()
        ready.append((await http.get("/readyz")).status_code)
        restarted = time.monotonic()
        await loop.run_in_executor(None, pg.start)
        while True:  # no restart of the API: its pool reconnects on its own
            r = await http.get(f"/areas/{village}")
            statuses.append(r.status_code)
            if r.status_code == 200:
                break
            assert time.monotonic() - restarted < 60, "the API did not recover"
            await asyncio.sleep(0.1)
        recovery = time.monotonic() - restarted
        for _ in range(10):
            await one()
    return {"statuses": statuses, "created": created, "bad_503": bad_503, "ready": ready, "recovery": recovery}
