from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from fupin import xlsx
from fupin.areas.scope import visible
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.errors import RuleViolation, not_found
from fupin.households import importer, queries, reads, rules, service
from fupin.households.schemas import (
    Category,
    Cause,
    EventRead,
    HouseholdCreate,
    HouseholdRead,
    HouseholdStats,
    HouseholdSummary,
    HouseholdUpdate,
    ImportResult,
    Labour,
    MemberIn,
    MemberUpdate,
    Status,
    TransitionIn,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, Reader, Reading, SessionDep, json_response
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["households"])
AreaQ = Annotated[str | None, Query(pattern=r"^\d{12}$", description="Only households inside this area")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 5 * 1024 * 1024
XLSX_ROW_LIMIT = xlsx.MAX_DATA_ROWS


def _filters(
    area: AreaQ = None,
    status: Status | None = None,
    category: Category | None = None,
    cause: Cause | None = None,
    exit_year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    labour: Labour | None = None,
    has_active_loan: bool | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50, description="Head name, or an exact ID number")] = None,
) -> queries.Filters:
    return queries.Filters(area=area, status=status, category=category, cause=cause, exit_year=exit_year,
                           labour=labour, has_active_loan=has_active_loan, q=q)


# One set of filter parameters for the list and the export, so the two can never drift apart.
FiltersDep = Annotated[queries.Filters, Depends(_filters)]


SortQ = Literal[
    "created_at", "-created_at", "head_name", "-head_name", "household_no", "-household_no",
    "income_per_capita", "-income_per_capita",
]


@router.post("/households", summary="Record a household's application (本人申请) with its members",
             response_model=HouseholdRead, status_code=201, responses=problem_responses(403, 404, 409))
async def create_household(
    body: HouseholdCreate, session: SessionDep, principal: Principal = Authorized(Perm.household_write)
) -> HouseholdRead:
    return await service.create_household(session, principal=principal, data=body)


@router.get("/households", summary="List households in your area (filters, search, sort, cursor)",
            response_model=Page[HouseholdSummary], responses=problem_responses(403, 404))
async def list_households(
    filters: FiltersDep,
    reader: Reader = Reading(Perm.household_read),
    sort: SortQ = "created_at",
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    async with reader.transaction() as conn:
        page = await reads.page(conn, principal=reader.principal, filters=filters, sort=sort, cursor=cursor,
                                limit=limit)
    return json_response(page)


@router.post("/households/import", summary="Import an .xlsx roster (one row per member), all or nothing",
             response_model=ImportResult, status_code=201, responses=problem_responses(403, 409, 413),
             openapi_extra={"requestBody": {"required": True, "description": (
                 "The .xlsx file itself as the body (not multipart), one row per member, in the layout "
                 "`GET /households/export` writes; any bad row refuses the whole file with 422 and each row's "
                 "errors. The Content-Type is not checked; `application/octet-stream` works as well."), "content": {
                     XLSX: {"schema": {"type": "string", "format": "binary"}},
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def import_households(
    request: Request, session: SessionDep, principal: Principal = Authorized(Perm.household_import)
) -> ImportResult:
    content = await request.body()
    if len(content) > MAX_UPLOAD:
        raise RuleViolation("import.too_large", "the file is too large", "文件过大", status=413)
    if not content:
        raise RuleViolation("import.empty", "send the .xlsx file as the request body", "请上传 .xlsx 文件")
    return await importer.import_roster(session, principal=principal, content=content)


@router.get("/households/export", summary="Export the filtered roster as .xlsx or .csv (ID numbers masked per role)",
            response_model=None, response_class=Response, responses={
                **problem_responses(403, 404, 413),
                200: {"content": {XLSX: {}, "text/csv": {}}, "description": "One row per member"},
            })
async def export_households(
    request: Request,
    session: SessionDep,
    filters: FiltersDep,
    principal: Principal = Authorized(Perm.household_export),
    format: Literal["xlsx", "csv"] = "xlsx",
) -> Response:
    """CSV streams as the rows are read, whatever their number (a province's roster included). An .xlsx
    sheet holds at most 1,048,575 rows: past that the export is refused (413 `export.too_large`), never
    cut short; below it the workbook is built batch by batch on disk and streamed from there. Rows are
    read in a read-only transaction of the export's own, scoped to the caller."""
    headers = {"Content-Disposition": f'attachment; filename="households.{format}"'}
    batches = queries.export_batches(request.app.state.sessionmaker, principal=principal, filters=filters)
    if format == "csv":
        if filters.area and not visible(principal, filters.area):  # a 404 must come before the 200 starts
            raise not_found("area")
        return StreamingResponse(importer.roster_csv(batches, principal.role), media_type="text/csv; charset=utf-8",
                                 headers=headers)
    await queries.refuse_past(session, principal=principal, filters=filters, rows=XLSX_ROW_LIMIT,
                              why="an .xlsx sheet holds no more; export as CSV or narrow the filters",
                              why_zh="超出 .xlsx 工作表容量,请导出 CSV 或缩小范围")
    path = await importer.roster_xlsx(batches, principal.role)
    return StreamingResponse(_file_then_delete(path), media_type=XLSX, headers=headers)


async def _file_then_delete(path: str, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    try:
        with open(path, "rb") as f:  # noqa: ASYNC230 - local temp file, 256 KiB reads
            while data := f.read(chunk):
                yield data
    finally:
        os.unlink(path)


@router.get("/households/{household_id}", summary="Get one household with its members",
            response_model=HouseholdRead, responses=problem_responses(403, 404))
async def get_household(household_id: uuid.UUID, reader: Reader = Reading(Perm.household_read)) -> Response:
    async with reader.transaction() as conn:
        row = await reads.household(conn, principal=reader.principal, household_id=household_id)
    return json_response(row)


@router.patch("/households/{household_id}", summary="Correct a household's data (动态更新)",
              response_model=HouseholdRead, responses=problem_responses(403, 404, 409))
async def update_household(
    household_id: uuid.UUID, body: HouseholdUpdate, session: SessionDep,
    principal: Principal = Authorized(Perm.household_write),
) -> HouseholdRead:
    return await service.update_household(session, principal=principal, household_id=household_id, data=body)


@router.post("/households/{household_id}/members", summary="Add members to a household",
             response_model=HouseholdRead, status_code=201, responses=problem_responses(403, 404, 409))
async def add_members(
    household_id: uuid.UUID, body: Annotated[list[MemberIn], ...], session: SessionDep,
    principal: Principal = Authorized(Perm.household_write),
) -> HouseholdRead:
    if not 1 <= len(body) <= 30:
        raise RuleViolation("request.invalid", "give 1 to 30 members", "须提供1至30名成员")
    return await service.add_members(session, principal=principal, household_id=household_id, items=body)


@router.patch("/households/{household_id}/members/{member_id}", summary="Update or deactivate a member",
              response_model=HouseholdRead, responses=problem_responses(403, 404, 409))
async def update_member(
    household_id: uuid.UUID, member_id: uuid.UUID, body: MemberUpdate, session: SessionDep,
    principal: Principal = Authorized(Perm.household_write),
) -> HouseholdRead:
    return await service.update_member(
        session, principal=principal, household_id=household_id, member_id=member_id, data=body
    )


@router.post("/households/{household_id}/transitions",
             summary="Take the next workflow step (identification, exit, return, removal, rejection)",
             response_model=EventRead, status_code=201, responses=problem_responses(403, 404, 409))
async def post_transition(
    household_id: uuid.UUID, body: TransitionIn, session: SessionDep,
    principal: Principal = Authorized(Perm.household_transition),
) -> EventRead:
    ev = await service.transition(session, principal=principal, household_id=household_id, data=body)
    return EventRead.model_validate(ev).model_copy(
        update={"allowed_actions": rules.allowed_steps(ev.to_status or "", principal.role)})


@router.get("/households/{household_id}/transitions", summary="List the household's status transitions",
            response_model=Page[EventRead], responses=problem_responses(403, 404))
async def list_transitions(
    household_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.household_read)
) -> Page[EventRead]:
    rows = await service.list_events(session, principal=principal, household_id=household_id, transitions_only=True)
    return Page[EventRead](items=[EventRead.model_validate(r) for r in rows])


@router.get("/households/{household_id}/history", summary="The household's full immutable history",
            response_model=Page[EventRead], responses=problem_responses(403, 404))
async def history(
    household_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.household_read)
) -> Page[EventRead]:
    rows = await service.list_events(session, principal=principal, household_id=household_id, transitions_only=False)
    return Page[EventRead](items=[EventRead.model_validate(r) for r in rows])


@router.get("/stats/households", summary="Counts by status, category, cause and poverty incidence for an area",
            response_model=HouseholdStats, responses=problem_responses(403, 404))
async def stats(
    session: SessionDep,
    area: Annotated[str, Query(pattern=r"^\d{12}$")],
    principal: Principal = Authorized(Perm.household_stats),
) -> HouseholdStats:
    return await queries.household_stats(session, principal=principal, area=area)
