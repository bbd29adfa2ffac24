from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from fupin.auth import service, sessions
from fupin.auth.schemas import RefreshRequest, Token
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
    """Anyone may call it. Answers a short-lived access token (`expires_in`, 15 minutes by default) and a
    refresh token that starts a login session: `POST /auth/refresh` renews both, `POST /auth/logout` ends it.
    Throttled per username and per client address before the password is checked (429 `auth.throttled`
    with Retry-After); after `login_max_failures` wrong passwords the user is locked out (429 `auth.locked`).
    401 `auth.bad_credentials` for a wrong username or password or a deactivated user."""
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
    return _token(await sessions.start(session, user=user, settings=settings), settings)


def _token(issued: sessions.Issued, settings: SettingsDep) -> Token:
    return Token(access_token=issued.access_token, expires_in=settings.jwt_ttl_seconds,
                 refresh_token=issued.refresh_token, refresh_expires_in=issued.refresh_expires_in)


@router.post(
    "/auth/refresh",
    summary="Trade a refresh token for a new access token and a new refresh token",
    response_model=Token,
    responses=problem_responses(),
)
async def refresh_token(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> Token:
    """No bearer token needed: the refresh token is the credential. Each refresh token works once; the answer
    carries the next one, which replaces it. 401 `auth.invalid_refresh_token` when it is unknown, expired
    (`refresh_expires_in`, and at most `FUPIN_REFRESH_SESSION_MAX_SECONDS` after login) or revoked (logout,
    password changed, user deactivated). 401 `auth.refresh_reused` when it was used before: a copy is in
    someone else's hands, so the whole login session is revoked and the user must log in again.
    Two tabs of one browser should therefore share one refresh token and refresh one at a time."""
    try:
        issued = await sessions.refresh(session, token=body.refresh_token, settings=settings)
    except DomainError:
        # A session revoked while refusing (token reused, user changed) must stay revoked.
        await session.commit()
        raise
    return _token(issued, settings)


@router.post(
    "/auth/logout",
    summary="End the login session of a refresh token",
    status_code=204,
    response_class=Response,
    responses=problem_responses(),
)
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """No bearer token needed: the refresh token names the session. Its refresh token stops working at once;
    access tokens already issued stay valid until they expire (`expires_in`, 15 minutes by default), so a
    client drops its access token too. 204 also for an unknown or already ended session: logging out twice
    is not an error."""
    await sessions.logout(session, token=body.refresh_token)
    return Response(status_code=204)
