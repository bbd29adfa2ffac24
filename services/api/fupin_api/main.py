"""The FastAPI application: lifespan-owned engine and Redis pool, problem+json errors, offline docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from fupin import logs
from fupin.auth.cache import AuthCache, VerifiedTokens
from fupin.db import app_url, make_engine, make_sessionmaker
from fupin.documents.storage import make_storage
from fupin.jobs import job_dumps, job_loads
from fupin.settings import Settings, get_settings, require_secure
from fupin_api import hot, idempotency, metrics, openapi_contract, problems, throttle
from fupin_api.conditional import ConditionalMiddleware
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
        app.state.storage = make_storage(settings)
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
        # Metrics are Prometheus (/metrics) and logs are JSON lines; with OpenTelemetry on, FastAPI asks the
        # global OTel providers (reading the environment) on every request: ~6 % of a hot read's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.auth_cache = AuthCache(settings.token_cache_seconds)
    app.state.verified_tokens = VerifiedTokens()
    app.state.throttle = throttle.Throttle(None, settings)  # no Redis (connect_redis=False): nothing throttled
    problems.install(app)
    idempotency.install(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi_contract.install(app)
    if settings.environment != "production":
        install_docs(app)
    # The hot reads (fupin_api.hot) innermost: behind ids, limits, logs, metrics and ETags, before the router.
    hot.install(app)
    app.add_middleware(ConditionalMiddleware, router=app.router)  # inside the platform one: ids, limits, logs
    app.add_middleware(PlatformMiddleware, max_body=settings.max_body_bytes,
                       upload_limits={"/bank/loan-event-files": settings.bank_file_max_bytes,
                                      # the file plus its multipart framing and form fields
                                      "/documents": settings.document_max_bytes + 64 * 1024})
    if settings.cors_origins:
        # Outermost, so a preflight is answered before the platform middleware and routing (which would say 405).
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key",
                           "X-Request-Id"],
            expose_headers=["ETag", "Idempotent-Replayed", "Location", "Retry-After", "X-Request-Id"], max_age=600,
        )
    return app
