from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from fupin.auth.permissions import Perm, allowed
from fupin.auth.principal import Principal
from fupin.dividends import queries, rules, service
from fupin.dividends.models import DividendHolding
from fupin.dividends.schemas import (
    HoldingCreate,
    HoldingRead,
    HoldingStatusName,
    HouseholdDividends,
    PoolCreate,
    PoolRead,
    RedeemBody,
    RenewBody,
    RunCreate,
    RunDetail,
    RunRead,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ, LimitQ
from fupin_api.problems import problem_responses
from fupin_api.routes.jobs import job_location_by_key

router = APIRouter(route_class=WriteRoute, tags=["dividends"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _holding(holding: DividendHolding, principal: Principal) -> HoldingRead:
    return HoldingRead.model_validate(holding).model_copy(update={"allowed_actions": rules.holding_actions(
        holding.status, allowed(principal.role, Perm.dividend_write))})


@router.post(
    "/dividend-pools", summary="Create a dividend pool (特惠贷 pooled investment or cooperative share)",
    response_model=PoolRead, status_code=201, responses=problem_responses(403, 404),
)
async def create_pool(body: PoolCreate, session: SessionDep, principal: Principal = Authorized(Perm.dividend_write)) -> PoolRead:
    pool = await service.create_pool(session, principal=principal, **body.model_dump())
    return PoolRead.model_validate(pool)


@router.get("/dividend-pools", summary="List dividend pools in your area", response_model=Page[PoolRead],
            responses=problem_responses(403))
async def list_pools(
    session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_read),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: uuid.UUID | None = None,
) -> Page[PoolRead]:
    rows = await service.list_pools(session, principal=principal, limit=limit, after=cursor)
    items = [PoolRead.model_validate(p) for p in rows]
    return Page[PoolRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get("/dividend-pools/{pool_id}", summary="Get one dividend pool", response_model=PoolRead,
            responses=problem_responses(403, 404))
async def get_pool(pool_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.dividend_read)) -> PoolRead:
    return PoolRead.model_validate(await service.get_pool(session, principal=principal, pool_id=pool_id))


@router.post(
    "/dividend-pools/{pool_id}/holdings", summary="Enrol a registered household in a pool (once per pool)",
    response_model=HoldingRead, status_code=201, responses=problem_responses(403, 404, 409),
)
async def add_holding(
    pool_id: uuid.UUID, body: HoldingCreate, session: SessionDep, principal: Principal = Authorized(Perm.dividend_write)
) -> HoldingRead:
    holding = await service.add_holding(session, principal=principal, pool_id=pool_id, **body.model_dump())
    return _holding(holding, principal)


@router.get(
    "/dividend-pools/{pool_id}/holdings", summary="List a pool's holdings (status=matured: contracts awaiting a decision)",
    response_model=Page[HoldingRead], responses=problem_responses(403, 404),
)
async def list_holdings(
    pool_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_read),
    status: HoldingStatusName | None = None,
) -> Page[HoldingRead]:
    rows = await service.list_holdings(session, principal=principal, pool_id=pool_id, status=status)
    return Page[HoldingRead](items=[_holding(h, principal) for h in rows])


@router.post(
    "/dividend-pools/{pool_id}/holdings/{holding_id}/renew", summary="Renew a holding for another term",
    response_model=HoldingRead, responses=problem_responses(403, 404, 409),
)
async def renew_holding(
    pool_id: uuid.UUID, holding_id: uuid.UUID, body: RenewBody, session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_write),
) -> HoldingRead:
    holding = await service.renew_holding(
        session, principal=principal, pool_id=pool_id, holding_id=holding_id, term_years=body.term_years
    )
    return _holding(holding, principal)


@router.post(
    "/dividend-pools/{pool_id}/holdings/{holding_id}/redeem",
    summary="Redeem a holding: the share returned to the household (or taken back in kind); payouts stop",
    response_model=HoldingRead, responses=problem_responses(403, 404, 409),
)
async def redeem_holding(
    pool_id: uuid.UUID, holding_id: uuid.UUID, body: RedeemBody, session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_write),
) -> HoldingRead:
    holding = await service.redeem_holding(
        session, principal=principal, pool_id=pool_id, holding_id=holding_id, in_kind=body.in_kind, on=body.on
    )
    return _holding(holding, principal)


@router.post(
    "/dividend-runs", summary="Request a dividend run for a pool and period (paid once by the worker)",
    response_model=RunRead, status_code=202, responses=problem_responses(403, 404, 409),
)
async def request_run(body: RunCreate, session: SessionDep, response: Response,
                      principal: Principal = Authorized(Perm.dividend_pay)) -> RunRead:
    run = await service.request_run(session, principal=principal, pool_id=body.pool_id, period=body.period)
    await job_location_by_key(session, response, run.job_key)
    return RunRead.model_validate(run)


@router.get("/dividend-runs", summary="List dividend runs in your area", response_model=Page[RunRead],
            responses=problem_responses(403))
async def list_runs(
    session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_read),
    pool_id: uuid.UUID | None = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[RunRead]:
    rows, next_cursor = await service.list_runs(session, principal=principal, pool_id=pool_id, limit=limit,
                                                cursor=cursor)
    return Page[RunRead](items=[RunRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/dividend-runs/{run_id}", summary="A run's totals with per-household and per-person figures",
    response_model=RunDetail, responses=problem_responses(403, 404),
)
async def get_run(run_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.dividend_read)) -> RunDetail:
    return await queries.run_detail(session, principal=principal, run_id=run_id)


@router.get(
    "/dividend-runs/{run_id}/roster", summary="The run's payment roster (花名册), JSON or ?format=xlsx",
    response_model=RunDetail,
    responses={**problem_responses(403, 404), 200: {"content": {XLSX: {}}, "description": "The roster"}},
)
async def get_roster(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Authorized(Perm.dividend_read),
    format: Literal["json", "xlsx"] = "json",
) -> RunDetail | Response:
    detail = await queries.run_detail(session, principal=principal, run_id=run_id)
    if format == "xlsx":
        return Response(
            queries.roster_xlsx(detail), media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="dividend-roster-{run_id}.xlsx"'},
        )
    return detail


@router.get(
    "/households/{household_id}/dividends", summary="Every dividend a household received, per year, with the pool",
    response_model=HouseholdDividends, responses=problem_responses(403, 404),
)
async def household_dividends(
    household_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.dividend_read)
) -> HouseholdDividends:
    return await queries.household_dividends(session, principal=principal, household_id=household_id)
