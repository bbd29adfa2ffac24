"""Typed dependencies: one transaction per request, the caller's principal, and permission checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from fupin import fastread, jobs
from fupin.areas.scope import scope_pattern
from fupin.auth import service as auth_service
from fupin.auth.cache import AuthCache
from fupin.auth.permissions import Perm, allowed, require
from fupin.auth.principal import Principal
from fupin.db import set_area_scope, unit_of_work
from fupin.documents.storage import Storage
from fupin.errors import Unauthorized
from fupin.settings import Settings
from fupin_api.idempotency import claim_for, identifies_caller

log = logging.getLogger("fupin.api")
TOKEN_URL = "/auth/token"
oauth2 = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def get_settings_dep(request: Request) -> Settings:
    # async: a sync dependency would hop through the thread pool on every request.
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]

ENQUEUE_TIMEOUT_SECONDS = 2.0


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent.

    This dependency is function-scoped (see `SessionDep`): FastAPI runs its exit right after the
    endpoint returned and its response was serialised, and before a byte is sent. A request-scoped
    exit would run after the client already had its 2xx, so a failed commit would be acknowledged as
    success. A failing commit raises here and becomes problem+json (409 to retry, 503 when the
    database is gone); only then are the new job rows handed to arq (they are durable already)."""
    session: AsyncSession = request.app.state.sessionmaker()
    try:
        yield session
        keys = jobs.requested_keys(session)
        if session.in_transaction():  # a route that never used its session (a raw fast path) has nothing to commit
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
    if keys:
        await enqueue_jobs(request, keys)


async def enqueue_jobs(request: Request, keys: list[str]) -> None:
    """Best effort and bounded: if Redis is down or slow the rows stay pending and the sweeper delivers them."""
    pool = getattr(request.app.state, "arq", None)
    if pool is None:
        return
    try:
        async with asyncio.timeout(ENQUEUE_TIMEOUT_SECONDS):
            for key in keys:
                await pool.enqueue_job("run_job", key, _job_id=key)
        async with unit_of_work(request.app.state.sessionmaker) as session:
            await jobs.mark_enqueued(session, keys)
    except Exception:  # the outbox row is committed; the sweeper will deliver it
        log.warning("enqueue failed for %s; left to the sweeper", keys, exc_info=True)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def resolve_principal(request: Request, token: str | None, session: AsyncSession | None = None) -> Principal:
    """The caller of this request. The token's signature and expiry are checked here; its version, the
    user's role, area and active flag come from the user row, cached per process for
    `token_cache_seconds` (read with `session` when given, else on a short session of its own)."""
    if not token:
        raise Unauthorized("auth.missing_token", "authentication required", "需要登录")
    settings: Settings = request.app.state.settings
    user_id, version = auth_service.decode_token(token, settings=settings,
                                                 verified=request.app.state.verified_tokens)
    cache: AuthCache = request.app.state.auth_cache
    user = cache.get(user_id)
    if user is None:
        if session is not None:
            user = await auth_service.load_auth(session, user_id)
        else:
            async with request.app.state.sessionmaker() as own:
                user = await auth_service.load_auth(own, user_id)
        if user is not None:
            cache.put(user_id, user)
    principal = auth_service.admit(user_id, user, version)
    request.state.principal = principal
    return principal


@identifies_caller
async def get_principal(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    principal = await resolve_principal(request, token, session)
    # RLS second wall: this transaction only sees rows in the caller's area (SET LOCAL, which reaches
    # the Citus workers too); the statement timeout is a setting of the API's connections (main.py).
    # Users' rows (`app_user`) only for those who administer users, in their area.
    scope = scope_pattern(principal)
    await set_area_scope(session, scope, user_scope=scope if allowed(principal.role, Perm.user_read) else "")
    await claim_for(request, session, caller=f"user:{principal.user_id}", area_code=principal.area_code)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Authorize:
    """Dependency that admits the caller only with `perm`; routes carry it so tests can list them."""

    def __init__(self, perm: Perm) -> None:
        self.perm = perm

    async def __call__(self, principal: PrincipalDep) -> Principal:
        require(principal.role, self.perm)
        return principal


def Authorized(perm: Perm) -> Any:
    """`principal: Principal = Authorized(Perm.x)`: the caller, admitted only with `perm`."""
    return Depends(Authorize(perm))


@dataclass(frozen=True)
class Reader:
    """The hot read path of one request (`fupin.fastread`): the admitted caller and a way to open its
    scoped, read-only transaction. No session, no ORM; the route commits before it returns."""

    principal: Principal
    engine: AsyncEngine
    timeout_ms: int

    def transaction(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return fastread.read_transaction(self.engine, scope=scope_pattern(self.principal), timeout_ms=self.timeout_ms)


class Read(OAuth2PasswordBearer):
    """Dependency for hot read routes: like `Authorized(perm)`, without opening a session.

    It is itself the bearer-token scheme (the same one as `oauth2`, so the OpenAPI document shows the
    same security requirement) rather than depending on `oauth2`: FastAPI resolves every level of
    dependencies per request, and this one level less is ~5 % of a hot read's CPU."""

    def __init__(self, perm: Perm) -> None:
        super().__init__(tokenUrl=TOKEN_URL, scheme_name=oauth2.scheme_name, auto_error=False)
        self.perm = perm

    async def __call__(self, request: Request) -> Reader:  # type: ignore[override]
        principal = await resolve_principal(request, await super().__call__(request))
        require(principal.role, self.perm)
        state = request.app.state
        return Reader(principal, state.engine, state.settings.db_statement_timeout_ms)


def Reading(perm: Perm) -> Any:
    """`reader: Reader = Reading(Perm.x)`: the hot read path for a caller admitted with `perm`."""
    return Depends(Read(perm))


def json_response(content: Any) -> Response:
    """A hot route's answer: the JSON pydantic would have written for the route's response model."""
    return Response(fastread.to_json(content), media_type="application/json")
