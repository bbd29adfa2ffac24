from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from fupin.assessment import queries, service
from fupin.assessment.schemas import (
    CheckRunRead,
    QuotaConfirm,
    QuotaProposalRead,
    RepaymentCheckLoanRead,
    RepaymentCheckRead,
    RepaymentCheckRequest,
    RepaymentPolicyCreate,
    RepaymentPolicyRead,
    RepaymentRiskRead,
)
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.money import Day
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses
from fupin_api.routes.jobs import job_location

router = APIRouter(route_class=WriteRoute, tags=["assessment"])
CodeQ = Annotated[str | None, Query(pattern=r"^\d{12}$")]


@router.post(
    "/repayment-policies", summary="Add a county's repayment-assessment policy from a date on",
    response_model=RepaymentPolicyRead, status_code=201, responses=problem_responses(403, 404, 409),
)
async def create_policy(
    body: RepaymentPolicyCreate, session: SessionDep, principal: Principal = Authorized(Perm.repayment_policy_write)
) -> RepaymentPolicyRead:
    row = await service.create_policy(session, principal=principal, **body.model_dump())
    return RepaymentPolicyRead.model_validate(row)


@router.get(
    "/repayment-policies", summary="List repayment-assessment policies in your scope",
    response_model=Page[RepaymentPolicyRead], responses=problem_responses(403),
)
async def list_policies(
    session: SessionDep, principal: Principal = Authorized(Perm.repayment_policy_read), area_code: CodeQ = None
) -> Page[RepaymentPolicyRead]:
    rows = await service.list_policies(session, principal=principal, area_code=area_code)
    return Page[RepaymentPolicyRead](items=[RepaymentPolicyRead.model_validate(r) for r in rows])


@router.post(
    "/repayment-checks", summary="Ask for a repayment-rate check of a county or township for a period",
    response_model=CheckRunRead, status_code=202, responses=problem_responses(403, 404),
)
async def request_check(
    body: RepaymentCheckRequest, session: SessionDep, response: Response,
    principal: Principal = Authorized(Perm.repayment_check_trigger),
) -> CheckRunRead:
    as_of = body.as_of or min(body.period_end, business_date())
    run, created = await service.request_check(
        session, principal=principal, area_code=body.area_code, period_start=body.period_start,
        period_end=body.period_end, as_of=as_of,
    )
    job_location(response, run.id)
    return CheckRunRead(job_id=run.id, key=run.key, status=run.status, created=created)


@router.get(
    "/repayment-checks", summary="List repayment-rate checks in your scope",
    response_model=Page[RepaymentCheckRead], responses=problem_responses(403),
)
async def list_checks(
    session: SessionDep,
    principal: Principal = Authorized(Perm.repayment_check_read),
    area_code: CodeQ = None,
    kind: Annotated[str | None, Query(pattern="^(monthly|annual|manual)$")] = None,
    band: Annotated[str | None, Query(pattern="^(reward|standard|penalty|no_loans_due)$")] = None,
    period_end: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: uuid.UUID | None = None,
) -> Page[RepaymentCheckRead]:
    rows = await service.list_checks(
        session, principal=principal, area_code=area_code, kind=kind, band=band, period_end=period_end,
        limit=limit, after=cursor,
    )
    items = [RepaymentCheckRead.model_validate(r) for r in rows]
    return Page[RepaymentCheckRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get(
    "/repayment-checks/{check_id}", summary="Get one repayment-rate check",
    response_model=RepaymentCheckRead, responses=problem_responses(403, 404),
)
async def get_check(
    check_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.repayment_check_read)
) -> RepaymentCheckRead:
    return RepaymentCheckRead.model_validate(await service.get_check(session, principal=principal, check_id=check_id))


@router.get(
    "/repayment-checks/{check_id}/loans", summary="The loans behind a check, as they stood on its as-of date",
    response_model=Page[RepaymentCheckLoanRead], responses=problem_responses(403, 404),
)
async def check_loans(
    check_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Authorized(Perm.repayment_check_read),
    overdue: bool = False,
) -> Page[RepaymentCheckLoanRead]:
    rows = await service.check_loans(session, principal=principal, check_id=check_id, overdue_only=overdue)
    return Page[RepaymentCheckLoanRead](items=[RepaymentCheckLoanRead.model_validate(r) for r in rows])


@router.get(
    "/quota-proposals", summary="List next year's quota proposals from the annual assessment",
    response_model=Page[QuotaProposalRead], responses=problem_responses(403),
)
async def list_proposals(
    session: SessionDep,
    principal: Principal = Authorized(Perm.quota_proposal_read),
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: Annotated[str | None, Query(pattern="^(proposed|confirmed)$")] = None,
) -> Page[QuotaProposalRead]:
    rows = await service.list_proposals(session, principal=principal, year=year, status=status)
    return Page[QuotaProposalRead](items=[QuotaProposalRead.model_validate(r) for r in rows])


@router.get(
    "/quota-proposals/{proposal_id}", summary="Get one quota proposal",
    response_model=QuotaProposalRead, responses=problem_responses(403, 404),
)
async def get_proposal(
    proposal_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.quota_proposal_read)
) -> QuotaProposalRead:
    row = await service.get_proposal(session, principal=principal, proposal_id=proposal_id)
    return QuotaProposalRead.model_validate(row)


@router.post(
    "/quota-proposals/{proposal_id}/confirm", summary="Confirm a quota proposal; it becomes next year's quota",
    response_model=QuotaProposalRead, responses=problem_responses(403, 404, 409),
)
async def confirm_proposal(
    proposal_id: uuid.UUID,
    session: SessionDep,
    body: QuotaConfirm | None = None,
    principal: Principal = Authorized(Perm.quota_proposal_confirm),
) -> QuotaProposalRead:
    row = await service.confirm_proposal(
        session, principal=principal, proposal_id=proposal_id, quota=body.quota if body else None
    )
    return QuotaProposalRead.model_validate(row)


@router.get(
    "/reports/repayment-risk",
    summary="Early warning: year-to-date repayment rate per township, bands, ranking and overdue loans",
    response_model=RepaymentRiskRead, responses=problem_responses(403, 404),
)
async def repayment_risk(
    session: SessionDep,
    area_code: Annotated[str, Query(pattern=r"^\d{12}$")],
    principal: Principal = Authorized(Perm.repayment_report_read),
    as_of: Day | None = None,
) -> RepaymentRiskRead:
    report = await queries.repayment_risk(
        session, principal=principal, area_code=area_code, as_of=as_of or business_date()
    )
    return RepaymentRiskRead.model_validate(report)
