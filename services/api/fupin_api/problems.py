"""RFC 9457 problem+json for every error: domain refusals, validation, infrastructure, and bugs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from fupin.errors import DomainError
from fupin_api import throttle
from fupin_api.denials import record_refusal

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
    409: "Conflict", 412: "Precondition Failed", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}
TITLES = _TITLES  # read by the OpenAPI refiner for its examples


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
    for s in sorted({401, 422, 503, *statuses}):
        out[s] = {"model": Problem, "description": _TITLES.get(s, "Error"), "content": {PROBLEM: {}}}
    if 429 in out:
        out[429]["headers"] = {"Retry-After": {
            "description": "Seconds until the caller may try again", "schema": {"type": "integer", "minimum": 1}}}
    return out


def _loc_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        await record_refusal(request, exc)
        await throttle.count_refusal(request, exc)
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
        return _database_problem(request, exc) or _internal(request, exc)

    @app.exception_handler(DBAPIError)
    async def db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        return _database_problem(request, exc) or _internal(request, exc)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        # asyncpg raises ConnectionRefusedError and friends unwrapped when it cannot reach the server.
        return _database_problem(request, exc) or _internal(request, exc)

    @app.exception_handler(asyncpg.PostgresError)
    async def pg_error(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        # e.g. "the database system is starting up", raised unwrapped while connecting
        return _database_problem(request, exc) or _internal(request, exc)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        return _database_problem(request, exc) or _internal(request, exc)


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal", "internal error", "内部错误")


def _database_problem(request: Request, exc: BaseException) -> JSONResponse | None:
    """The problem+json for a database failure, or None when `exc` is not one (then it is a bug: 500)."""
    outcome = classify_database_error(exc)
    if outcome is None:
        return None
    status, code, en, zh, retry_after = outcome
    if status == 409 and code == "conflict.integrity":
        log.warning("integrity error on %s: %s", request.url.path, exc)
    elif status == 503:
        log.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return problem_response(request, status, code, en, zh, headers=headers)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE anywhere in the chain: SQLAlchemy wraps the dialect's error, which wraps asyncpg's."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


# SQLSTATE classes that mean "the database is not there right now": connection exceptions (08),
# insufficient resources (53: too many connections, disk full), operator intervention (57P01 admin
# shutdown, 57P02 crash shutdown, 57P03 cannot connect now = starting up / shutting down).
_UNAVAILABLE_PREFIXES = ("08", "53", "57P")
_UNAVAILABLE_TYPES = (OSError, asyncio.TimeoutError, asyncpg.exceptions.ConnectionDoesNotExistError,
                      asyncpg.exceptions.InterfaceError)
Outcome = tuple[int, str, str, str, int | None]


def classify_database_error(exc: BaseException) -> Outcome | None:
    """(status, code, English, Chinese, Retry-After) for a database failure; None if `exc` is not one.

    Retryable conflicts are 409 with a code clients retry on; a database that is down, starting,
    shutting down, out of connections or too slow is 503 with Retry-After — never a 500."""
    if isinstance(exc, PoolTimeout):
        return 503, "service.busy", "database busy, retry shortly", "数据库繁忙,请稍后重试", 2
    state = _sqlstate(exc)
    if state == "57014":  # query_canceled: the statement timeout
        return 503, "service.timeout", "the query took too long, retry shortly", "查询超时,请稍后重试", 5
    if state in ("40001", "40P01"):  # serialization failure, deadlock: the transaction rolled back whole
        return 409, "conflict.concurrent", "concurrent change, retry", "并发修改冲突,请重试", 1
    if state == "55P03":  # lock_not_available: a lock timeout, the row is busy
        return 503, "service.busy", "the record is busy, retry shortly", "记录正被占用,请稍后重试", 1
    if (state is not None and state.startswith("23")) or isinstance(exc, IntegrityError):
        return 409, "conflict.integrity", "the change conflicts with existing data", "与现有数据冲突", None
    text = str(exc).lower()
    if state in ("22021", "22P05") or "null character not permitted" in text or "invalid byte sequence" in text:
        # A NUL or malformed byte in a parameter: the caller's input, not our bug; nothing was written.
        return (422, "request.invalid_characters", "the request contains characters that cannot be stored",
                "请求包含无法保存的字符(如 NUL)", None)
    if state is not None and state.startswith(_UNAVAILABLE_PREFIXES):
        return 503, "service.database_unavailable", "database unavailable, retry shortly", "数据库暂不可用,请稍后重试", 5
    chain: list[BaseException] = [exc]
    for link in (getattr(exc, "orig", None), exc.__cause__, exc.__context__):
        if isinstance(link, BaseException):
            chain.append(link)
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if invalidated or isinstance(exc, OperationalError) or any(isinstance(e, _UNAVAILABLE_TYPES) for e in chain):
        return 503, "service.database_unavailable", "database unavailable, retry shortly", "数据库暂不可用,请稍后重试", 5
    return None
