from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from fupin.auth import service
from fupin.auth.schemas import Token
from fupin.errors import DomainError
from fupin_api import metrics
from fupin_api.denials import client_address
from fupin_api.deps import SessionDep, SettingsDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["auth"])


@router.post(
    "/auth/token",
    summary="Issue an access token (OAuth2 password form)",
    response_model=Token,
    responses=problem_responses(429),
)
async def issue_token(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """Throttled per username and per client address before the password is checked (429 `auth.throttled`
    with Retry-After); after `login_max_failures` wrong passwords the user is locked out (429 `auth.locked`)."""
    throttle = request.app.state.throttle
    await throttle.hit("auth.throttled", [(throttle.login_user, form.username),
                                          (throttle.login_address, client_address(request) or "unknown")])
    try:
        user = await service.authenticate(session, settings=settings, username=form.username, password=form.password)
    except DomainError as exc:
        # The failed-login counter must persist even though the request fails.
        await session.commit()
        metrics.login_refused(exc)
        raise
    return Token(access_token=service.issue_token(user, settings), expires_in=settings.jwt_ttl_seconds)
