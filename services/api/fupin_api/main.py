"""The FastAPI application: lifespan-owned engine and Redis pool, problem+json errors, offline docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI

from fupin import logs
from fupin.auth.cache import AuthCache
from fupin.db import app_url, make_engine, make_sessionmaker
from fupin.jobs import job_dumps, job_loads
from fupin.settings import Settings, get_settings, require_secure
from fupin_api import metrics, problems, throttle
from fupin_api.middleware import PlatformMiddleware
from fupin_api.openapi import install_docs, operation_id
from fupin_api.routes import ROUTERS

log = logging.getLogger("fupin.api")

DESCRIPTION = """
Backend for targeted poverty alleviation (精准扶贫): household registry (建档立卡), pairing (结对帮扶),
special-preference loans (扶贫到户贷款/特惠贷), interest subsidies (贴息), dividends (分红), projects and
repayment-rate checks. Every error is `application/problem+json` with a stable `code` and messages in
English (`detail`) and Chinese (`detail_zh`). Money is a decimal string in yuan.
"""


def create_app(settings: Settings | None = None, *, connect_redis: bool = True) -> FastAPI:
    settings = settings or get_settings()
    require_secure(settings, process="the API")
    logs.configure_structlog()  # handlers are the process's business (asgi.py); this only routes structlog

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            app_url(settings), name="fupin-api", pool_size=settings.db_pool_size, pool_timeout=settings.db_pool_timeout,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        app.state.engine = engine
        metrics.POOL.track("api", engine)
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.arq = None
        if connect_redis:
            app.state.throttle = throttle.connect(settings)
        if connect_redis and settings.redis_url:
            try:
                app.state.arq = await create_pool(
                    RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.queue_name,
                    job_serializer=job_dumps, job_deserializer=job_loads,
                )
            except Exception:
                log.warning("redis unreachable at start-up; jobs wait in PostgreSQL for the sweeper", exc_info=True)
        try:
            yield
        finally:
            if app.state.arq is not None:
                await app.state.arq.aclose()
            await app.state.throttle.aclose()
            metrics.POOL.untrack(engine)
            await engine.dispose()

    app = FastAPI(
        title="fupin 扶贫 API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.auth_cache = AuthCache(settings.token_cache_seconds)
    app.state.throttle = throttle.Throttle(None, settings)  # no Redis (connect_redis=False): nothing throttled
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.environment != "production":
        install_docs(app)
    app.add_middleware(PlatformMiddleware, max_body=settings.max_body_bytes,
                       upload_limits={"/bank/loan-event-files": settings.bank_file_max_bytes})
    return app
