from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from fupin.errors import Unauthorized
from fupin.metrics import bearer_matches
from fupin_api import metrics
from fupin_api.deps import SettingsDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["health"])


class Health(BaseModel):
    status: str
    database: str | None = None
    redis: str | None = Field(
        None, description="Reported, never a reason to be unready: without Redis, writes still commit and the "
        "worker's sweeper delivers their jobs once Redis is back.",
    )


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz", summary="Readiness: the database answers (Redis is reported, not required)", response_model=Health,
    responses={503: {"model": Health, "description": "the database is unreachable"}},
)
async def readyz(request: Request) -> Response:
    db = "ok"
    redis = "ok"
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        db = "down"
    pool = getattr(request.app.state, "arq", None)
    try:
        if pool is None:
            raise RuntimeError("no redis pool")
        await pool.ping()
    except Exception:
        redis = "down"
    ok = db == "ok"
    body = Health(status="ok" if ok else "unavailable", database=db, redis=redis)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics", summary="Prometheus metrics (bearer token when FUPIN_METRICS_TOKEN is set)", response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
               **problem_responses()},
)
async def metrics_route(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    if settings.metrics_token and not bearer_matches(authorization, settings.metrics_token):
        raise Unauthorized("metrics.unauthorized", "a metrics bearer token is required", "需要监控令牌")
    for reading in metrics.DB_READINGS:
        await reading.refresh(request.app.state.sessionmaker)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

