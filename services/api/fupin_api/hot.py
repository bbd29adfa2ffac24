"""The hottest reads served below FastAPI's routing and dependency machinery (pure ASGI).

The frontends' most frequent requests — one area, household, loan or loan application by id, a page of
areas, of a village's households or of loans — are answered here, inside the platform and conditional middlewares (request id,
security headers, metrics, access line, ETag and 304 all stay theirs) and before Starlette's router:

- only exactly these `GET` paths, with the query parameters the route declares, each in its plain form
  (digits for a limit, a canonical UUID, 12 ASCII digits for a code); the caller's bearer token must be one
  this process already verified (`VerifiedTokens`) or verifies now, and its user row must be in the
  token-version cache (`AuthCache`);
- the permission and the area scope are the route's own (`require`, `scope_pattern`; the same `reads`
  functions the hot FastAPI routes call, and for the two routes still on the ORM path — one loan
  application, a page of loans — reads built from the ORM path's rule and statement), in three round trips
  on the pool's raw connection with RLS on (`fupin.fastread`: BEGIN + scope + timeout in one message, the
  statement, COMMIT); tests/platform/test_hot_dispatch.py holds every answer to the FastAPI route's;
- the answer is the bytes the FastAPI route writes: `fastread.to_json` of the same dict, with the same
  `content-length` and `content-type` headers.

Anything else falls through to the FastAPI route, unchanged and in full: HEAD, another query parameter or a
value in an unusual spelling, a missing, bad, expired or revoked token, a user row not cached, a missing
permission, an object not found or outside the scope, a database error. Every refusal and every error
is therefore the route's own answer (problem+json, 401/403/404/422/503, the denial's audit row), and the
routes stay declared, so the OpenAPI document does not change. `app.state.hot_reads = False` turns the
dispatcher off (the tests compare both paths with it)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from fastapi import FastAPI
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from fupin import fastread
from fupin.areas import reads as area_reads
from fupin.areas.scope import scope_pattern
from fupin.auth import service as auth_service
from fupin.auth.permissions import Perm, require
from fupin.auth.principal import Principal
from fupin.errors import DomainError
from fupin.households import queries as household_queries
from fupin.households import reads as household_reads
from fupin.loans import reads as loan_reads
from fupin_api.openapi import api_routes

_CODE = re.compile(r"[0-9]{12}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_LEVELS = frozenset({"province", "city", "county", "township", "village"})
_HOUSEHOLD_SORTS = frozenset({"created_at", "-created_at", "head_name", "-head_name", "household_no",
                              "-household_no", "income_per_capita", "-income_per_capita"})
_LOAN_STATUSES = frozenset({"current", "repaid_on_time", "repaid_late", "overdue"})
_JSON_HEADERS = b"application/json"

Query = dict[str, str]
# (connection, caller, path parameter or query) -> the JSON-ready answer
Read = Callable[[asyncpg.Connection, Principal, Any], Awaitable[Any]]


def _limit(query: Query, default: int = 100) -> int | None:
    value = query.get("limit")
    if value is None:
        return default
    if not _LIMIT.fullmatch(value) or int(value) > 500:
        return None
    return int(value)


def _code_or_absent(query: Query, name: str) -> bool:
    value = query.get(name)
    return value is None or _CODE.fullmatch(value) is not None


# --- the reads: each parses what it takes (None: not the plain form, let FastAPI answer) and reads ---------


def _area_page_args(query: Query) -> dict[str, Any] | None:
    if not query.keys() <= {"parent", "level", "limit", "cursor"}:
        return None
    limit = _limit(query)
    level = query.get("level")
    if (limit is None or (level is not None and level not in _LEVELS) or not _code_or_absent(query, "parent")
            or not _code_or_absent(query, "cursor")):
        return None
    return {"parent": query.get("parent"), "level": level, "limit": limit, "after": query.get("cursor")}


def _household_page_args(query: Query) -> dict[str, Any] | None:
    if not query.keys() <= {"area", "sort", "limit", "cursor"}:
        return None
    limit = _limit(query)
    sort = query.get("sort", "created_at")
    cursor = query.get("cursor")
    if (limit is None or sort not in _HOUSEHOLD_SORTS or not _code_or_absent(query, "area")
            or (cursor is not None and not 0 < len(cursor) <= 300)):
        return None
    return {"filters": household_queries.Filters(area=query.get("area")), "sort": sort, "cursor": cursor,
            "limit": limit}


async def _area(conn: asyncpg.Connection, principal: Principal, code: str) -> Any:
    return await area_reads.area(conn, principal=principal, code=code)


async def _area_page(conn: asyncpg.Connection, principal: Principal, args: dict[str, Any]) -> Any:
    return await area_reads.page(conn, principal=principal, **args)


async def _household(conn: asyncpg.Connection, principal: Principal, household_id: str) -> Any:
    return await household_reads.household(conn, principal=principal, household_id=uuid.UUID(household_id))


async def _household_page(conn: asyncpg.Connection, principal: Principal, args: dict[str, Any]) -> Any:
    return await household_reads.page(conn, principal=principal, **args)


async def _loan(conn: asyncpg.Connection, principal: Principal, loan_id: str) -> Any:
    return await loan_reads.loan(conn, principal=principal, loan_id=uuid.UUID(loan_id))


def _loan_page_args(query: Query) -> dict[str, Any] | None:
    if not query.keys() <= {"status", "township", "limit", "cursor"}:
        return None
    limit = _limit(query)
    status = query.get("status")
    cursor = query.get("cursor")
    if (limit is None or (status is not None and status not in _LOAN_STATUSES)
            or not _code_or_absent(query, "township") or (cursor is not None and not 0 < len(cursor) <= 512)):
        return None
    return {"status": status, "township_code": query.get("township"), "limit": limit, "cursor": cursor}


async def _loan_page(conn: asyncpg.Connection, principal: Principal, args: dict[str, Any]) -> Any:
    return await loan_reads.loan_page(conn, principal=principal, **args)


async def _application(conn: asyncpg.Connection, principal: Principal, application_id: str) -> Any:
    return await loan_reads.application(conn, principal=principal, application_id=uuid.UUID(application_id))


class _ById:
    __slots__ = ("id_pattern", "perm", "read", "template")

    def __init__(self, template: str, perm: Perm, id_pattern: re.Pattern[str], read: Read) -> None:
        self.template, self.perm, self.id_pattern, self.read = template, perm, id_pattern, read


class _Page:
    __slots__ = ("args", "perm", "read", "template")

    def __init__(self, template: str, perm: Perm, args: Callable[[Query], dict[str, Any] | None], read: Read) -> None:
        self.template, self.perm, self.args, self.read = template, perm, args, read


# The first segment of the path -> the read; the permission is the FastAPI route's `Reading(...)`.
BY_ID: dict[str, _ById] = {
    "areas": _ById("/areas/{code}", Perm.area_read, _CODE, _area),
    "households": _ById("/households/{household_id}", Perm.household_read, _UUID, _household),
    "loans": _ById("/loans/{loan_id}", Perm.loan_read, _UUID, _loan),
    "loan-applications": _ById("/loan-applications/{application_id}", Perm.loan_read, _UUID, _application),
}
PAGES: dict[str, _Page] = {
    "areas": _Page("/areas", Perm.area_read, _area_page_args, _area_page),
    "households": _Page("/households", Perm.household_read, _household_page_args, _household_page),
    "loans": _Page("/loans", Perm.loan_read, _loan_page_args, _loan_page),
}


def _query(raw: bytes) -> Query | None:
    """The query parameters as Starlette parses them; None when one is given twice (let FastAPI decide)."""
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    return query if len(query) == len(pairs) else None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":  # the first one, as Starlette's `headers.get`
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class HotReads:
    """Pure ASGI: answers the hot reads it fully handles, hands every other request to `app` untouched."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.state: State = fastapi.state
        routes = {r.path: r for r in api_routes(fastapi) if "GET" in (r.methods or ())}
        # The FastAPI route each read stands for: the template in metrics and the access line is its own.
        templates = [read.template for read in BY_ID.values()] + [read.template for read in PAGES.values()]
        self.routes = {template: routes[template] for template in templates}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.state.hot_reads and not scope.get("root_path"):
            body = await self._answer(scope)
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()), (b"content-type", _JSON_HEADERS)]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> bytes | None:
        """The 200 body of a request this dispatcher handles in full, else None (FastAPI answers)."""
        head, slash, tail = scope["path"][1:].partition("/")
        key: Any
        if slash:
            by_id = BY_ID.get(head)
            if by_id is None or scope["query_string"] or not by_id.id_pattern.fullmatch(tail):
                return None
            read, perm, template, key = by_id.read, by_id.perm, by_id.template, tail
        else:
            page = PAGES.get(head)
            if page is None:
                return None
            query = _query(scope["query_string"])
            key = page.args(query) if query is not None else None
            if key is None:
                return None
            read, perm, template = page.read, page.perm, page.template
        principal = self._principal(scope, perm)
        if principal is None:
            return None
        state = self.state
        try:
            async with fastread.read_transaction(state.engine, scope=scope_pattern(principal),
                                                 timeout_ms=state.settings.db_statement_timeout_ms) as conn:
                content = await read(conn, principal, key)
        except Exception:  # not found, out of scope, a bad cursor, a database error: the route answers it
            return None
        # What the FastAPI route leaves for the platform middleware: its template, the caller.
        scope["route"] = self.routes[template]
        scope.setdefault("state", {})["principal"] = principal
        return fastread.to_json(content)

    def _principal(self, scope: Scope, perm: Perm) -> Principal | None:
        """The caller as `deps.resolve_principal` admits them, from caches only; None for anything else."""
        token = _bearer(scope)
        if token is None:
            return None
        state = self.state
        try:
            user_id, version = auth_service.decode_token(token, settings=state.settings,
                                                         verified=state.verified_tokens)
            user = state.auth_cache.get(user_id)
            if user is None:  # the route reads the row and caches it for the next request
                return None
            principal = auth_service.admit(user_id, user, version)
            require(principal.role, perm)
        except (DomainError, ValueError):  # refused (401/403), or a role this code does not know
            return None
        return principal


def install(app: FastAPI) -> None:
    """Innermost of the app's middlewares (call before adding the others): inside the platform and
    conditional ones, in front of FastAPI's router."""
    app.state.hot_reads = True
    app.add_middleware(HotReads, fastapi=app)
