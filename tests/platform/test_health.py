"""Readiness is the database: a Redis outage is reported but never takes the API out of service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from fupin.settings import Settings


@asynccontextmanager
async def _client(settings: Settings, *, connect_redis: bool) -> AsyncIterator[httpx.AsyncClient]:
    from fupin_api.main import create_app

    app = create_app(settings, connect_redis=connect_redis)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


class TestReadiness:
    async def test_ready_without_redis_and_says_so(self, test_settings):
        async with _client(test_settings, connect_redis=False) as c:
            r = await c.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "database": "ok", "redis": "down"}

    async def test_unready_without_the_database(self, test_settings):
        down = test_settings.model_copy(update={
            "app_database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none", "db_pool_timeout": 1.0,
        })
        async with _client(down, connect_redis=False) as c:
            r = await c.get("/readyz")
            assert (await c.get("/healthz")).status_code == 200
        assert r.status_code == 503
        assert r.json()["database"] == "down"
