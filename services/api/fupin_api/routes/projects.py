"""Poverty-alleviation projects: library, lifecycle, bids, progress, beneficiaries, funds, reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.auth.permissions import Perm, allowed
from fupin.auth.principal import Principal
from fupin.projects import beneficiaries, funds, queries, rules, service
from fupin.projects.models import Project
from fupin.projects.schemas import (
    BeneficiariesCreate,
    BeneficiariesRead,
    BidCreate,
    BidRead,
    FundCreate,
    FundRead,
    FundsRead,
    FundsReportRow,
    HouseholdBenefitRead,
    HouseholdProjectRead,
    Kind,
    NoticeCreate,
    NoticeRead,
    ProgressCreate,
    ProgressRead,
    ProjectCreate,
    ProjectRead,
    SettingCreate,
    SettingRead,
    Source,
    Status,
    TransitionCreate,
    TransitionRead,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["projects"])
AreaQ = Annotated[str | None, Query(pattern=r"^\d{12}$")]


def _moves(principal: Principal, status: str, suspended_from: str | None) -> list[str]:
    if not allowed(principal.role, Perm.project_transition):
        return []
    return [s.value for s in rules.allowed_moves(Status(status), Status(suspended_from) if suspended_from else None)]


async def _read(session: AsyncSession, principal: Principal, projects: list[Project]) -> list[ProjectRead]:
    extra = await service.details(session, projects)
    out = []
    for p in projects:
        d = extra[p.id]
        out.append(
            ProjectRead(
                id=p.id, name=p.name, kind=p.kind, year=p.year, department=p.department,
                implementing_unit=p.implementing_unit, area_code=p.area_code, townships=d["townships"],
                villages=d["villages"], quantities=p.quantities, budget=d["budget"],
                budget_total=sum(d["budget"].values(), service.ZERO), status=p.status,
                suspended_from=p.suspended_from, status_reason=p.status_reason, accepted_on=p.accepted_on,
                acceptance_team=p.acceptance_team, acceptance_result=p.acceptance_result, final_paid=p.final_paid,
                created_at=p.created_at, allowed_actions=_moves(principal, p.status, p.suspended_from),
            )
        )
    return out


@router.post(
    "/projects", summary="Declare (申报) a project", response_model=ProjectRead, status_code=201,
    responses=problem_responses(403, 404),
)
async def create_project(
    body: ProjectCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_write)
) -> ProjectRead:
    project = await service.create_project(session, principal=principal, body=body)
    await session.refresh(project)
    return (await _read(session, principal, [project]))[0]


@router.get(
    "/projects", summary="Project library (项目库) by area and year", response_model=Page[ProjectRead],
    responses=problem_responses(403),
)
async def list_projects(
    session: SessionDep,
    principal: Principal = Authorized(Perm.project_read),
    area_code: AreaQ = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    kind: Kind | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: uuid.UUID | None = None,
) -> Page[ProjectRead]:
    rows = await service.list_projects(
        session, principal=principal, area_code=area_code, year=year, kind=kind, status=status, limit=limit,
        after=cursor,
    )
    items = await _read(session, principal, rows)
    return Page[ProjectRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get("/projects/{project_id}", summary="Get one project", response_model=ProjectRead, responses=problem_responses(403, 404))
async def get_project(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> ProjectRead:
    project = await service.get_project(session, principal=principal, project_id=project_id)
    return (await _read(session, principal, [project]))[0]


@router.post(
    "/projects/{project_id}/transitions", summary="Move a project along its lifecycle", response_model=TransitionRead,
    status_code=201, responses=problem_responses(403, 404, 409),
)
async def transition(
    project_id: uuid.UUID, body: TransitionCreate, session: SessionDep,
    principal: Principal = Authorized(Perm.project_transition),
) -> TransitionRead:
    row = await service.transition(
        session, principal=principal, project_id=project_id, to=body.to, on=body.on, reason=body.reason,
        acceptance_team=body.acceptance_team, acceptance_result=body.acceptance_result,
    )
    project = await service.get_project(session, principal=principal, project_id=project_id)
    return TransitionRead.model_validate(row).model_copy(
        update={"allowed_actions": _moves(principal, project.status, project.suspended_from)})


@router.get(
    "/projects/{project_id}/transitions", summary="A project's status history", response_model=Page[TransitionRead],
    responses=problem_responses(403, 404),
)
async def list_transitions(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> Page[TransitionRead]:
    rows = await service.list_transitions(session, principal=principal, project_id=project_id)
    return Page[TransitionRead](items=[TransitionRead.model_validate(r) for r in rows])


@router.post(
    "/projects/{project_id}/notices", summary="Record a public notice (公告公示) and its period",
    response_model=NoticeRead, status_code=201, responses=problem_responses(403, 404, 409),
)
async def add_notice(
    project_id: uuid.UUID, body: NoticeCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_write)
) -> NoticeRead:
    row = await service.add_notice(
        session, principal=principal, project_id=project_id, stage=body.stage, starts_on=body.starts_on,
        ends_on=body.ends_on, content=body.content,
    )
    return NoticeRead.model_validate(row)


@router.get(
    "/projects/{project_id}/notices", summary="A project's public notices", response_model=Page[NoticeRead],
    responses=problem_responses(403, 404),
)
async def list_notices(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> Page[NoticeRead]:
    return Page[NoticeRead](items=[NoticeRead.model_validate(r) for r in await service.list_notices(session, principal=principal, project_id=project_id)])


@router.post(
    "/projects/{project_id}/bids", summary="Record a bid (招投标), optionally the winner", response_model=BidRead,
    status_code=201, responses=problem_responses(403, 404, 409),
)
async def add_bid(
    project_id: uuid.UUID, body: BidCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_write)
) -> BidRead:
    row = await service.add_bid(
        session, principal=principal, project_id=project_id, bidder=body.bidder, amount=body.amount, winner=body.winner
    )
    return BidRead.model_validate(row)


@router.get(
    "/projects/{project_id}/bids", summary="A project's bids", response_model=Page[BidRead],
    responses=problem_responses(403, 404),
)
async def list_bids(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> Page[BidRead]:
    return Page[BidRead](items=[BidRead.model_validate(r) for r in await service.list_bids(session, principal=principal, project_id=project_id)])


@router.post(
    "/projects/{project_id}/progress", summary="Report progress (percent, date, note)", response_model=ProgressRead,
    status_code=201, responses=problem_responses(403, 404, 409),
)
async def add_progress(
    project_id: uuid.UUID, body: ProgressCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_write)
) -> ProgressRead:
    row = await service.add_progress(
        session, principal=principal, project_id=project_id, percent=body.percent, reported_on=body.reported_on,
        note=body.note,
    )
    return ProgressRead.model_validate(row)


@router.get(
    "/projects/{project_id}/progress", summary="A project's progress reports", response_model=Page[ProgressRead],
    responses=problem_responses(403, 404),
)
async def list_progress(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> Page[ProgressRead]:
    return Page[ProgressRead](items=[ProgressRead.model_validate(r) for r in await service.list_progress(session, principal=principal, project_id=project_id)])


async def _beneficiaries(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> BeneficiariesRead:
    villages, rows = await beneficiaries.list_beneficiaries(session, principal=principal, project_id=project_id)
    return BeneficiariesRead(
        villages=villages,
        households=[
            HouseholdBenefitRead(household_id=r.household_id, village_code=r.area_code, kind=r.benefit_kind, amount=r.amount)
            for r in rows
        ],
    )


@router.post(
    "/projects/{project_id}/beneficiaries", summary="Tie a project to villages and households (到村到户)",
    response_model=BeneficiariesRead, status_code=201, responses=problem_responses(403, 404, 409),
)
async def add_beneficiaries(
    project_id: uuid.UUID, body: BeneficiariesCreate, session: SessionDep,
    principal: Principal = Authorized(Perm.project_write),
) -> BeneficiariesRead:
    await beneficiaries.add_beneficiaries(
        session, principal=principal, project_id=project_id, villages=body.villages, households=body.households
    )
    return await _beneficiaries(session, principal, project_id)


@router.get(
    "/projects/{project_id}/beneficiaries", summary="Villages and households a project benefits",
    response_model=BeneficiariesRead, responses=problem_responses(403, 404),
)
async def list_beneficiaries(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> BeneficiariesRead:
    return await _beneficiaries(session, principal, project_id)


@router.post(
    "/projects/{project_id}/funds", summary="Allocate funds to a project or disburse (拨付) them",
    response_model=FundRead, status_code=201, responses=problem_responses(403, 404, 409),
)
async def record_funds(
    project_id: uuid.UUID, body: FundCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_fund)
) -> FundRead:
    row = await funds.record_movement(session, principal=principal, project_id=project_id, body=body)
    return FundRead.model_validate(row)


@router.get(
    "/projects/{project_id}/funds", summary="A project's allocations and disbursements", response_model=FundsRead,
    responses=problem_responses(403, 404),
)
async def list_funds(
    project_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> FundsRead:
    budget, rows = await funds.list_movements(session, principal=principal, project_id=project_id)
    items = [FundRead.model_validate(r) for r in rows]
    return FundsRead(
        budget=budget,
        allocated=sum((i.amount for i in items if i.movement == "allocation"), service.ZERO),
        disbursed=sum((i.amount for i in items if i.movement == "disbursement"), service.ZERO),
        items=items,
    )


@router.post(
    "/project-settings", summary="Set a county's per-household industry benefit cap from a date",
    response_model=SettingRead, status_code=201, responses=problem_responses(403, 404),
)
async def add_setting(
    body: SettingCreate, session: SessionDep, principal: Principal = Authorized(Perm.project_setting)
) -> SettingRead:
    row = await beneficiaries.add_setting(
        session, principal=principal, county_code=body.county_code, cap=body.household_benefit_cap,
        effective_from=body.effective_from, effective_to=body.effective_to,
    )
    return SettingRead.model_validate(row)


@router.get(
    "/reports/project-funds", summary="Project fund utilisation: budget, allocated, disbursed, % used",
    response_model=Page[FundsReportRow], responses=problem_responses(403),
)
async def project_funds_report(
    session: SessionDep,
    principal: Principal = Authorized(Perm.project_read),
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    township: AreaQ = None,
    source: Source | None = None,
    group_by: queries.GroupBy = queries.GroupBy.project_source,
) -> Page[FundsReportRow]:
    rows = await queries.fund_utilisation(
        session, principal=principal, year=year, township=township, source=source, group_by=group_by
    )
    return Page[FundsReportRow](items=[FundsReportRow.model_validate(r) for r in rows])


@router.get(
    "/households/{household_id}/projects", summary="Projects benefiting a household",
    response_model=Page[HouseholdProjectRead], responses=problem_responses(403, 404),
)
async def household_projects(
    household_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.project_read)
) -> Page[HouseholdProjectRead]:
    rows = await queries.household_projects(session, principal=principal, household_id=household_id)
    return Page[HouseholdProjectRead](items=[HouseholdProjectRead.model_validate(r) for r in rows])
