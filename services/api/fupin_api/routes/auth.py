from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from fupin.auth import service
from fupin.auth.schemas import Token
from fupin.errors import DomainError
from fupin_api import metrics
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
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> Token:
    try:
        user = await service.authenticate(session, settings=settings, username=form.username, password=form.password)
    except DomainError as exc:
        # The failed-login counter must persist even though the request fails.
        await session.commit()
        metrics.login_refused(exc)
        raise
    return Token(access_token=service.issue_token(user, settings), expires_in=settings.jwt_ttl_seconds)
