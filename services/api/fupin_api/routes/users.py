from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from fupin.auth import service
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.auth.schemas import UserCreate, UserRead, UserUpdate
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ, TotalQ
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["users"])


@router.post("/users", summary="Create a user in your area", response_model=UserRead, status_code=201,
             responses=problem_responses(403, 404, 409))
async def create_user(body: UserCreate, session: SessionDep, principal: Principal = Authorized(Perm.user_write)) -> UserRead:
    user = await service.add_user(
        session, principal=principal, username=body.username, password=body.password, role=body.role,
        area_code=body.area_code, full_name=body.full_name,
    )
    return UserRead.model_validate(user)


@router.get("/users", summary="List users in your area", response_model=Page[UserRead], responses=problem_responses(403))
async def list_users(
    session: SessionDep,
    principal: Principal = Authorized(Perm.user_read),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQ = None,
    total: TotalQ = False,
) -> Page[UserRead]:
    rows, next_cursor, count = await service.list_users(session, principal=principal, limit=limit, cursor=cursor,
                                                        total=total)
    return Page[UserRead](items=[UserRead.model_validate(u) for u in rows], next_cursor=next_cursor, total=count)


@router.get("/users/{user_id}", summary="Get a user", response_model=UserRead, responses=problem_responses(403, 404))
async def get_user(user_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.user_read)) -> UserRead:
    return UserRead.model_validate(await service.get_user(session, principal=principal, user_id=user_id))


@router.patch("/users/{user_id}", summary="Deactivate a user, reset a password or rename",
              response_model=UserRead, responses=problem_responses(403, 404))
async def update_user(
    request: Request, user_id: uuid.UUID, body: UserUpdate, session: SessionDep,
    principal: Principal = Authorized(Perm.user_write),
) -> UserRead:
    user = await service.update_user(
        session, principal=principal, user_id=user_id, active=body.active, password=body.password,
        full_name=body.full_name,
    )
    # This process stops trusting its cached row at once; others within token_cache_seconds.
    request.app.state.auth_cache.forget(user_id)
    return UserRead.model_validate(user)
