from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from fupin.areas import service
from fupin.areas.schemas import AreaCreate, AreaRead, AreaUpdate
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.problems import problem_responses

router = APIRouter(tags=["areas"])
Code = Annotated[str, Path(pattern=r"^\d{12}$")]


@router.post(
    "/areas", summary="Create an area (level follows from the code)", response_model=AreaRead, status_code=201,
    responses=problem_responses(403, 404, 409),
)
async def create_area(body: AreaCreate, session: SessionDep, principal: Principal = Authorized(Perm.area_write)) -> AreaRead:
    area = await service.create_area(
        session, principal=principal, code=body.code, name=body.name, population=body.population
    )
    return AreaRead.model_validate(area)


@router.get("/areas", summary="List areas in your scope", response_model=Page[AreaRead], responses=problem_responses(403))
async def list_areas(
    session: SessionDep,
    principal: Principal = Authorized(Perm.area_read),
    parent: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    level: Annotated[str | None, Query(pattern="^(province|city|county|township|village)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> Page[AreaRead]:
    rows = await service.list_areas(session, principal=principal, parent=parent, level=level, limit=limit, after=cursor)
    items = [AreaRead.model_validate(a) for a in rows]
    return Page[AreaRead](items=items, next_cursor=items[-1].code if len(items) == limit else None)


@router.get("/areas/{code}", summary="Get one area", response_model=AreaRead, responses=problem_responses(403, 404))
async def get_area(code: Code, session: SessionDep, principal: Principal = Authorized(Perm.area_read)) -> AreaRead:
    return AreaRead.model_validate(await service.get_area(session, principal=principal, code=code))


@router.patch(
    "/areas/{code}", summary="Rename an area or set its registered population", response_model=AreaRead,
    responses=problem_responses(403, 404),
)
async def update_area(code: Code, body: AreaUpdate, session: SessionDep, principal: Principal = Authorized(Perm.area_write)) -> AreaRead:
    area = await service.update_area(session, principal=principal, code=code, name=body.name, population=body.population)
    return AreaRead.model_validate(area)
