"""Turns a refused request into an `access_denial` trace (fupin.audit.denials), off the refused transaction.

Called by the problem+json handler for every domain error; decides whether the refusal is one to audit
and who the caller was. Writing the trace must never change the answer: if the database cannot take
it within a short bound, the refusal is logged instead and answered as it would have been."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import Request

from fupin.audit import denials
from fupin.auth.principal import Principal
from fupin.auth.service import LoginAttempt
from fupin.errors import DomainError

log = logging.getLogger("fupin.api")

# 401s that are an attack signal rather than a client that forgot to log in.
AUDITED_UNAUTHORIZED = frozenset({"auth.bad_credentials", "auth.invalid_token", "bank.bad_signature",
                                  "bank.stale_timestamp"})
WRITE_TIMEOUT_SECONDS = 3.0


def client_address(request: Request) -> str | None:
    """The peer address as the ASGI server reports it (behind a proxy, run uvicorn with
    `--proxy-headers --forwarded-allow-ips=<the proxy>` so this is the real client)."""
    return request.client.host if request.client else None


def _route(request: Request) -> str | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def audited(request: Request, exc: DomainError) -> bool:
    if exc.status in (403, 429):
        return True
    if exc.status == 404:
        # Only id routes: a 404 there is a foreign or unknown object, the thing an enumeration probes.
        return bool(request.path_params)
    return exc.status == 401 and exc.code in AUDITED_UNAUTHORIZED


def denial_of(request: Request, exc: DomainError, *, now: datetime | None = None) -> denials.Denial | None:
    route = _route(request)
    if route is None or not audited(request, exc):
        return None
    addr = client_address(request)
    object_id = ",".join(str(v) for v in request.path_params.values()) or None
    principal: Principal | None = getattr(request.state, "principal", None)
    attempt = getattr(exc, "attempt", None)
    if principal is not None:
        actor = f"user:{principal.user_id}" if principal.user_id else principal.username
        who = (actor, principal.user_id, principal.username, principal.role.value, principal.area_code)
    elif isinstance(attempt, LoginAttempt) and attempt.user_id is not None and attempt.area_code:
        # A wrong password for a real user: counted on that user, in that user's area.
        who = (f"user:{attempt.user_id}", attempt.user_id, attempt.username, attempt.role, attempt.area_code)
    else:
        # No identity proved: counted on the address, so random usernames or client ids do not multiply rows.
        who = (f"addr:{addr or 'unknown'}", None, "", "", denials.PLATFORM_AREA)
        if isinstance(attempt, LoginAttempt):
            object_id = attempt.username
        elif claimed := request.headers.get("x-fupin-client"):
            object_id = claimed
    actor, actor_id, actor_name, role, area = who
    return denials.Denial(
        status=exc.status, code=exc.code, method=request.method, route=route, actor=actor, actor_id=actor_id,
        actor_name=actor_name, role=role, area_code=area, object_id=object_id, client_addr=addr,
        at=now or datetime.now(UTC),
    )


async def record_refusal(request: Request, exc: DomainError) -> None:
    denial = denial_of(request, exc)
    sessionmaker = getattr(request.app.state, "sessionmaker", None)
    if denial is None or sessionmaker is None:
        return
    try:
        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS), sessionmaker() as session, session.begin():
            await denials.record(session, denial)
    except Exception:  # the answer stands; the trace goes to the log instead
        log.warning("denial not recorded: %s %s %s %s %s", denial.actor, denial.method, denial.route, denial.code,
                    denial.object_id, exc_info=True)
