"""Who the caller is and what it may do: what a frontend needs to draw its menus after login."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import Field

from fupin.areas.models import Area
from fupin.auth.models import User
from fupin.auth.permissions import PERMISSIONS, Perm
from fupin.auth.principal import Principal
from fupin.schema import FupinSchema
from fupin_api.deps import Authorized, SessionDep
from fupin_api.problems import problem_responses

router = APIRouter(tags=["auth"])


class MeArea(FupinSchema):
    code: str = Field(examples=["520123101000"])
    name: str = Field(examples=["城关镇"])
    level: str = Field(examples=["township"])


class Me(FupinSchema):
    user_id: uuid.UUID | None
    username: str = Field(examples=["zhang.wei"])
    full_name: str | None = Field(examples=["张伟"])
    role: str = Field(examples=["township_station"])
    area: MeArea
    rights: list[str] = Field(description="Every right the role holds, e.g. `loan.step`; each route's description "
                                          "names the right it needs", examples=[["household.read", "loan.step"]])


@router.get("/me", summary="The signed-in user: role, area and rights", response_model=Me,
            responses=problem_responses(403))
async def me(session: SessionDep, principal: Principal = Authorized(Perm.self_read)) -> Me:
    """Read it after login (and after each token refresh) to decide which screens and buttons to show; the
    server still checks every call, so hiding a button is a courtesy, not the guard."""
    area = await session.get(Area, principal.area_code)
    user = await session.get(User, principal.user_id) if principal.user_id is not None else None
    return Me(
        user_id=principal.user_id, username=principal.username, full_name=user.full_name if user else None,
        role=principal.role.value,
        area=MeArea(code=principal.area_code, name=area.name if area else principal.area_code,
                    level=area.level if area else "unknown"),
        rights=sorted(p.value for p, roles in PERMISSIONS.items() if principal.role in roles),
    )
