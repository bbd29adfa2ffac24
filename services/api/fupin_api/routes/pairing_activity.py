"""结对帮扶 activity: visits (走访), help plans (一户一策) and the pairing reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.money import Day
from fupin.pairing import queries, visits
from fupin.pairing.models import HelpMeasure, HelpPlan
from fupin.pairing.schemas import (
    CoverageReport,
    HelpPlanCreate,
    HelpPlanRead,
    MeasureCreate,
    MeasureRead,
    MeasureUpdate,
    PlanGapReport,
    VisitCreate,
    VisitRateReport,
    VisitRead,
    WorkloadReport,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["pairing"])
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[uuid.UUID | None, Query()]
AreaParam = Annotated[str, Query(pattern=r"^\d{12}$", description="12-digit area code")]
PeriodParam = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|Q[1-4])$", description="2026-08 or 2026Q3")]


def _plan_read(plan: HelpPlan, measures: list[HelpMeasure]) -> HelpPlanRead:
    return HelpPlanRead(
        id=plan.id, area_code=plan.area_code, household_id=plan.household_id, year=plan.year, cadre_id=plan.cadre_id,
        measures=[MeasureRead.model_validate(m) for m in measures], total_funds=visits.total_funds(measures),
    )


# -- visits ------------------------------------------------------------------------------------


@router.post("/visits", summary="Record a visit (走访) by the paired cadre or on their behalf", status_code=201,
             response_model=VisitRead, responses=problem_responses(403, 404))
async def record_visit(body: VisitCreate, session: SessionDep,
                       principal: Principal = Authorized(Perm.pairing_visit_write)) -> VisitRead:
    visit = await visits.record_visit(
        session, principal=principal, household_id=body.household_id, cadre_id=body.cadre_id,
        visit_date=body.visit_date, kind=body.kind, findings=body.findings, measures=body.measures,
        photo_refs=body.photo_refs)
    return VisitRead.model_validate(visit)


@router.get("/visits", summary="List visits in your area (a cadre: their own households)",
            response_model=Page[VisitRead], responses=problem_responses(403))
async def list_visits(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                      household_id: uuid.UUID | None = None, cadre_id: uuid.UUID | None = None,
                      date_from: Day | None = None, date_to: Day | None = None, limit: Limit = 100,
                      cursor: Cursor = None) -> Page[VisitRead]:
    rows = await visits.list_visits(session, principal=principal, household_id=household_id, cadre_id=cadre_id,
                                    date_from=date_from, date_to=date_to, limit=limit, after=cursor)
    return Page[VisitRead](items=[VisitRead.model_validate(r) for r in rows],
                           next_cursor=str(rows[-1].id) if len(rows) == limit else None)


@router.get("/visits/{visit_id}", summary="Get a visit", response_model=VisitRead,
            responses=problem_responses(403, 404))
async def get_visit(visit_id: uuid.UUID, session: SessionDep,
                    principal: Principal = Authorized(Perm.pairing_read)) -> VisitRead:
    return VisitRead.model_validate(await visits.get_visit(session, principal=principal, visit_id=visit_id))


# -- help plans --------------------------------------------------------------------------------


@router.post("/help-plans", summary="Draw up a household's plan for a year (一户一策)", status_code=201,
             response_model=HelpPlanRead, responses=problem_responses(403, 404, 409))
async def create_plan(body: HelpPlanCreate, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_plan_write)) -> HelpPlanRead:
    plan, measures = await visits.create_plan(
        session, principal=principal, household_id=body.household_id, year=body.year, cadre_id=body.cadre_id,
        measures=[m.model_dump() for m in body.measures])
    return _plan_read(plan, measures)


@router.get("/help-plans", summary="List help plans in your area (a cadre: their own households)",
            response_model=Page[HelpPlanRead], responses=problem_responses(403))
async def list_plans(session: SessionDep, principal: Principal = Authorized(Perm.pairing_read),
                     household_id: uuid.UUID | None = None, year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                     limit: Limit = 100, cursor: Cursor = None) -> Page[HelpPlanRead]:
    rows = await visits.list_plans(session, principal=principal, household_id=household_id, year=year, limit=limit,
                                   after=cursor)
    return Page[HelpPlanRead](items=[_plan_read(p, m) for p, m in rows],
                              next_cursor=str(rows[-1][0].id) if len(rows) == limit else None)


@router.get("/help-plans/{plan_id}", summary="Get a help plan with its measures", response_model=HelpPlanRead,
            responses=problem_responses(403, 404))
async def get_plan(plan_id: uuid.UUID, session: SessionDep,
                   principal: Principal = Authorized(Perm.pairing_read)) -> HelpPlanRead:
    return _plan_read(*await visits.get_plan(session, principal=principal, plan_id=plan_id))


@router.post("/help-plans/{plan_id}/measures", summary="Add a measure (帮扶措施) to a plan", status_code=201,
             response_model=HelpPlanRead, responses=problem_responses(403, 404))
async def add_measure(plan_id: uuid.UUID, body: MeasureCreate, session: SessionDep,
                      principal: Principal = Authorized(Perm.pairing_plan_write)) -> HelpPlanRead:
    return _plan_read(*await visits.add_measure(session, principal=principal, plan_id=plan_id,
                                                measure=body.model_dump()))


@router.patch("/help-plans/{plan_id}/measures/{measure_id}", summary="Update a measure's progress",
              response_model=HelpPlanRead, responses=problem_responses(403, 404))
async def update_measure(plan_id: uuid.UUID, measure_id: uuid.UUID, body: MeasureUpdate, session: SessionDep,
                         principal: Principal = Authorized(Perm.pairing_plan_write)) -> HelpPlanRead:
    return _plan_read(*await visits.update_measure(
        session, principal=principal, plan_id=plan_id, measure_id=measure_id,
        changes=body.model_dump(exclude_unset=True, exclude_none=True)))


# -- reports -----------------------------------------------------------------------------------


@router.get("/reports/pairing-coverage", summary="Share of non-exited households with an active cadre",
            response_model=CoverageReport, responses=problem_responses(403, 404))
async def pairing_coverage(session: SessionDep, area: AreaParam, as_of: Day | None = None,
                           principal: Principal = Authorized(Perm.pairing_report)) -> CoverageReport:
    report = await queries.pairing_coverage(session, principal=principal, area=area, as_of=as_of or business_date())
    return CoverageReport.model_validate(report)


@router.get("/reports/visit-rate", summary="Share of paired households meeting the visit rule in a period",
            response_model=VisitRateReport, responses=problem_responses(403, 404))
async def visit_rate(session: SessionDep, area: AreaParam, period: PeriodParam,
                     principal: Principal = Authorized(Perm.pairing_report)) -> VisitRateReport:
    return VisitRateReport.model_validate(await queries.visit_rate(session, principal=principal, area=area,
                                                                   period=period))


@router.get("/reports/pairing-workload", summary="Households and visits per helping unit and per cadre",
            response_model=WorkloadReport, responses=problem_responses(403, 404))
async def pairing_workload(session: SessionDep, area: AreaParam, period: PeriodParam,
                           principal: Principal = Authorized(Perm.pairing_report)) -> WorkloadReport:
    return WorkloadReport.model_validate(await queries.workload(session, principal=principal, area=area,
                                                                period=period))


@router.get("/reports/help-plan-gaps", summary="Households without a plan, without measures or with overdue measures",
            response_model=PlanGapReport, responses=problem_responses(403, 404))
async def help_plan_gaps(session: SessionDep, area: AreaParam, year: Annotated[int, Query(ge=2000, le=2100)],
                         as_of: Day | None = None,
                         principal: Principal = Authorized(Perm.pairing_report)) -> PlanGapReport:
    return PlanGapReport.model_validate(await queries.plan_gaps(session, principal=principal, area=area, year=year,
                                                                as_of=as_of or business_date()))
