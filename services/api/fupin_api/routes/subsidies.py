from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from fupin import logs
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.schema import Page
from fupin.subsidies import service
from fupin.subsidies.roster_xlsx import XLSX, to_xlsx
from fupin.subsidies.schemas import (
    CountySubsidyRuns,
    CountySubsidyRunsCreate,
    LoanSubsidy,
    PolicyCreate,
    PolicyRead,
    Roster,
    RunCreate,
    RunRead,
)
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ, LimitQ
from fupin_api.problems import problem_responses
from fupin_api.routes.jobs import job_location_by_key

router = APIRouter(route_class=WriteRoute, tags=["subsidies"])


@router.post(
    "/subsidy-policies", summary="Set the county's subsidy policy from a date on", response_model=PolicyRead,
    status_code=201, responses=problem_responses(403, 409),
)
async def create_policy(
    body: PolicyCreate, session: SessionDep, principal: Principal = Authorized(Perm.subsidy_policy_write)
) -> PolicyRead:
    policy = await service.create_policy(session, principal=principal, effective_from=body.effective_from,
                                         rate=body.rate, productive_only=body.productive_only, note=body.note)
    return PolicyRead.model_validate(policy)


@router.get(
    "/subsidy-policies", summary="Your county's subsidy policies by effective date",
    response_model=Page[PolicyRead], responses=problem_responses(403),
)
async def list_policies(session: SessionDep, principal: Principal = Authorized(Perm.subsidy_read)) -> Page[PolicyRead]:
    rows = await service.list_policies(session, principal=principal)
    return Page[PolicyRead](items=[PolicyRead.model_validate(p) for p in rows])


@router.post(
    "/subsidy-runs", summary="Request a quarterly subsidy run (the worker executes it)", response_model=RunRead,
    status_code=202, responses=problem_responses(403, 404, 409),
)
async def request_run(
    body: RunCreate, session: SessionDep, response: Response,
    principal: Principal = Authorized(Perm.subsidy_run_request),
) -> RunRead:
    run = await service.request_run(session, principal=principal, township=body.township_code, quarter=body.quarter,
                                     phase=body.phase)
    await job_location_by_key(session, response, run.job_key)
    return RunRead.model_validate(run)


@router.post(
    "/subsidy-runs/county", summary="Request a quarter's runs for every township of a county in one call",
    response_model=CountySubsidyRuns, status_code=202, responses=problem_responses(403, 404, 409),
)
async def request_county_runs(
    body: CountySubsidyRunsCreate, session: SessionDep, response: Response,
    principal: Principal = Authorized(Perm.subsidy_run_request),
) -> CountySubsidyRuns:
    """Starts the quarter's `phase` (allocation, preallocation or settlement) for every township of
    `county_code`, which must lie in the caller's area (a township user gets 404). Townships whose run was
    requested before (by hand or by the quarterly cron) are listed under `already_requested` and left alone;
    409 `subsidy.run_exists` when that is every township, 422 `subsidy.quarter_not_ended` for a settlement
    before the quarter is over. `Location` lists the jobs this call created (`/jobs?request_id=…`)."""
    requested, existing = await service.request_county_runs(
        session, principal=principal, county=body.county_code, quarter=body.quarter, phase=body.phase)
    if (request_id := logs.current_request_id()) is not None:
        response.headers["Location"] = f"/jobs?request_id={request_id}"
    return CountySubsidyRuns(county_code=body.county_code, quarter=body.quarter, phase=body.phase,
                             requested=[RunRead.model_validate(r) for r in requested],
                             already_requested=[RunRead.model_validate(r) for r in existing])


@router.get("/subsidy-runs", summary="Subsidy runs in your area", response_model=Page[RunRead],
            responses=problem_responses(403))
async def list_runs(
    session: SessionDep,
    principal: Principal = Authorized(Perm.subsidy_read),
    quarter: Annotated[str | None, Query(pattern=r"^\d{4}Q[1-4]$")] = None,
    phase: Annotated[Literal["allocation", "preallocation", "settlement"] | None, Query()] = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[RunRead]:
    items, next_cursor = await service.list_runs(session, principal=principal, quarter=quarter, phase=phase,
                                                 limit=limit, cursor=cursor)
    return Page[RunRead](items=items, next_cursor=next_cursor)


@router.get("/subsidy-runs/{run_id}", summary="One subsidy run with its totals", response_model=RunRead,
            responses=problem_responses(403, 404))
async def get_run(run_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.subsidy_read)) -> RunRead:
    return await service.run_detail(session, principal=principal, run_id=run_id)


@router.get(
    "/subsidy-runs/{run_id}/roster",
    summary="Payment roster (花名册) of a settlement run; .xlsx via ?format=xlsx or Accept",
    response_model=Roster,
    responses={**problem_responses(403, 404), 200: {"content": {XLSX: {}}, "description": "roster"}},
)
async def get_roster(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Authorized(Perm.subsidy_read),
    format: Annotated[Literal["json", "xlsx"] | None, Query()] = None,
    coop: Annotated[str | None, Query(max_length=32, description="only this credit coop's rows")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Roster | Response:
    roster = await service.roster(session, principal=principal, run_id=run_id, coop=coop)
    if format == "xlsx" or (format is None and accept is not None and XLSX in accept):
        name = f"subsidy-roster-{roster.township_code}-{roster.quarter}.xlsx"
        return Response(to_xlsx(roster), media_type=XLSX,
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return roster


@router.get("/loans/{loan_id}/subsidy", summary="A loan's interest-subsidy entitlement and payout",
            response_model=LoanSubsidy, responses=problem_responses(403, 404))
async def loan_subsidy(
    loan_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.subsidy_read)
) -> LoanSubsidy:
    return await service.loan_subsidy(session, principal=principal, loan_id=loan_id)
