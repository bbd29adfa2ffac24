from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from fupin.areas import reads, service
from fupin.areas.schemas import AreaCreate, AreaRead, AreaUpdate
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.schema import Page
from fupin_api.deps import Authorized, Reader, Reading, SessionDep, json_response
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["areas"])
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
    reader: Reader = Reading(Perm.area_read),
    parent: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    level: Annotated[str | None, Query(pattern="^(province|city|county|township|village)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> Response:
    async with reader.transaction() as conn:
        page = await reads.page(conn, principal=reader.principal, parent=parent, level=level, limit=limit, after=cursor)
    return json_response(page)


@router.get("/areas/{code}", summary="Get one area", response_model=AreaRead, responses=problem_responses(403, 404))
async def get_area(code: Code, reader: Reader = Reading(Perm.area_read)) -> Response:
    async with reader.transaction() as conn:
        row = await reads.area(conn, principal=reader.principal, code=code)
    return json_response(row)


@router.patch(
    "/areas/{code}", summary="Rename an area or set its registered population", response_model=AreaRead,
    responses=problem_responses(403, 404),
)
async def update_area(code: Code, body: AreaUpdate, session: SessionDep, principal: Principal = Authorized(Perm.area_write)) -> AreaRead:
    area = await service.update_area(session, principal=principal, code=code, name=body.name, population=body.population)
    return AreaRead.model_validate(area)
