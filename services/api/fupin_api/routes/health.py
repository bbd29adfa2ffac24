from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from fupin_api.metrics import REGISTRY

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str | None = None
    redis: str | None = None


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz", summary="Readiness: database and Redis reachable", response_model=Health,
    responses={503: {"model": Health, "description": "a dependency is down"}},
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
    ok = db == "ok" and redis == "ok"
    body = Health(status="ok" if ok else "unavailable", database=db, redis=redis)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
