"""RFC 9457 problem+json for every error: domain refusals, validation, infrastructure, and bugs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from fupin.errors import DomainError

log = logging.getLogger("fupin.api")
PROBLEM = "application/problem+json"


class FieldError(BaseModel):
    path: str = Field(description="Dotted path of the offending field, e.g. body.members.0.id_number")
    message: str
    type: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    code: str = Field(description="Stable machine-readable code, e.g. loan.amount_over_cap")
    detail: str = Field(description="English message")
    detail_zh: str = Field(description="Chinese message")
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    extra: dict[str, Any] | None = None


_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    detail_zh: str,
    *,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        detail_zh=detail_zh,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
        extra=extra or None,
    )
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status, headers=headers, media_type=PROBLEM)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting the problem+json errors a route can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in sorted({401, 422, *statuses}):
        out[s] = {"model": Problem, "description": _TITLES.get(s, "Error"), "content": {PROBLEM: {}}}
    return out


def _loc_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = None
        if "retry_after" in exc.extra:
            headers = {"Retry-After": str(exc.extra["retry_after"])}
        return problem_response(
            request, exc.status, exc.code, exc.message_en, exc.message_zh, extra=exc.extra, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(path=_loc_path(e.get("loc", ())), message=str(e.get("msg", "")), type=str(e.get("type", "")))
            for e in exc.errors()
        ]
        return problem_response(
            request, 422, "request.invalid", "the request is not valid; see errors", "请求参数不合法,详见 errors",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route.not_found", 405: "method.not_allowed", 401: "auth.unauthorized"}.get(
            exc.status_code, f"http.{exc.status_code}"
        )
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, code, str(exc.detail), str(exc.detail), headers=headers)

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        return problem_response(
            request, 503, "service.busy", "database busy, retry shortly", "数据库繁忙,请稍后重试",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error on %s: %s", request.url.path, exc.orig)
        return problem_response(
            request, 409, "conflict.integrity", "the change conflicts with existing data", "与现有数据冲突"
        )

    @app.exception_handler(DBAPIError)
    async def db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        text = str(exc.orig).lower()
        if "statement timeout" in text or "canceling statement" in text:
            return problem_response(
                request, 503, "service.timeout", "the query took too long", "查询超时", headers={"Retry-After": "5"}
            )
        if "invalid byte sequence" in text or "null character not permitted" in text:
            # A NUL or malformed byte in a parameter: the caller's input, not our bug; nothing was written.
            return problem_response(
                request, 422, "request.invalid_characters", "the request contains characters that cannot be stored",
                "请求包含无法保存的字符(如 NUL)",
            )
        if "could not serialize" in text or "deadlock" in text:
            return problem_response(
                request, 409, "conflict.concurrent", "concurrent change, retry", "并发修改冲突,请重试",
                headers={"Retry-After": "1"},
            )
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            return problem_response(
                request, 503, "service.database_unavailable", "database unavailable", "数据库不可用",
                headers={"Retry-After": "5"},
            )
        log.exception("database error on %s", request.url.path)
        return problem_response(request, 500, "internal", "internal error", "内部错误")

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "internal", "internal error", "内部错误")
