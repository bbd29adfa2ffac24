"""Poverty-return prevention (防返贫): policies, warnings, departmental screenings, monitored households,
their workflow steps and assistance measures, and the yearly report. Thin: parse, one service call."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import RuleViolation
from fupin.money import Day
from fupin.monitoring import measures, policy, queries, screening, service, workflow
from fupin.monitoring.rules import MonitoringKind, RowOutcome, ScreeningSource, Status, WarningSource
from fupin.monitoring.schemas import (
    CadreAssign,
    MeasureCreate,
    MeasureRead,
    MeasureUpdate,
    MonitoredHouseholdCreate,
    MonitoredHouseholdDetail,
    MonitoredHouseholdRead,
    MonitoringPolicyCreate,
    MonitoringPolicyRead,
    MonitoringReport,
    RulesInForce,
    ScreeningRead,
    ScreeningRowRead,
    StepIn,
    StepRead,
    WarningCreate,
    WarningRead,
)
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["monitoring"])
AreaQ = Annotated[str, Query(pattern=r"^\d{12}$", description="A 12-digit area code", examples=["520123000000"])]
OptionalAreaQ = Annotated[str | None, Query(pattern=r"^\d{12}$", description="Only rows inside this area")]
AsOfQ = Annotated[Day | None, Query(description="The day deadlines are judged on (default today, Asia/Shanghai)",
                                     examples=["2026-11-30"])]
LimitQ = Annotated[int, Query(ge=1, le=500)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 5 * 1024 * 1024


# --- policies ------------------------------------------------------------------------------------------


@router.post(
    "/monitoring-policies", summary="Set the county's monitoring policy from a date on", status_code=201,
    response_model=MonitoringPolicyRead, responses=problem_responses(403, 404, 409),
    description="Poverty office only. Adds the county's monitoring rules from `effective_from`: income line per "
                "person per year, the large-expense ratio, the decision and measure deadlines (working days) and "
                "the elimination months. Policies are never edited; a later one supersedes. Errors: "
                "`monitoring.policy_not_county` (422), `monitoring.policy_exists` (409), another county (404).",
)
async def create_policy(body: MonitoringPolicyCreate, session: SessionDep,
                        principal: Principal = Authorized(Perm.monitoring_policy_write)) -> MonitoringPolicyRead:
    row = await policy.create_policy(session, principal=principal, **body.model_dump())
    return MonitoringPolicyRead.model_validate(row)


@router.get(
    "/monitoring-policies", summary="Your county's monitoring policies by effective date",
    response_model=Page[MonitoringPolicyRead], responses=problem_responses(403),
    description="Every staff role; a township or village reads its county's policies. Changes nothing.",
)
async def list_policies(session: SessionDep, principal: Principal = Authorized(Perm.monitoring_policy_read)
                        ) -> Page[MonitoringPolicyRead]:
    rows = await policy.list_policies(session, principal=principal)
    return Page[MonitoringPolicyRead](items=[MonitoringPolicyRead.model_validate(r) for r in rows])


@router.get(
    "/monitoring-policies/in-force", summary="The monitoring rules in force on a day, defaults marked",
    response_model=RulesInForce, responses=problem_responses(403, 404),
    description="Every staff role, for its own county (or any area inside it). When the county has set no "
                "policy the answer carries our defaults with `source: default` and lists them in "
                "`defaults_to_confirm`: they are to be confirmed by the county. Changes nothing.",
)
async def rules_in_force(
    session: SessionDep, area_code: AreaQ, principal: Principal = Authorized(Perm.monitoring_policy_read),
    on: Annotated[Day | None, Query(examples=["2026-09-25"])] = None,
) -> RulesInForce:
    resolved = await policy.rules_for_caller(session, principal=principal, area_code=area_code,
                                             on=on or business_date())
    r = resolved.rules
    return RulesInForce(
        county_code=resolved.county_code, on=resolved.on,
        policy_id=resolved.policy.id if resolved.policy else None,
        source="default" if resolved.is_default else "county",
        defaults_to_confirm=list(policy.FIELDS) if resolved.is_default else [],
        income_line=r.income_line, expense_ratio=r.expense_ratio, decision_days=r.decision_days,
        elimination_months=r.elimination_months, measure_days=r.measure_days,
    )


# --- warnings and screenings ------------------------------------------------------------------------------


@router.post(
    "/monitoring/warnings", summary="Report a risk (household's own report or a cadre's visit)", status_code=201,
    response_model=WarningRead, responses=problem_responses(403, 404, 409),
    description="Village committee (the household's own report, `self_report`), a paired cadre (`cadre_visit`, "
                "naming the pairing visit), or station/poverty office staff on their behalf. Opens a monitoring "
                "cycle with its decision deadline (working days), or is added to the household's open cycle; a "
                "household eliminated or dismissed before starts a new cycle. Routed to the household's village "
                "and paired cadre. Errors: `monitoring.household_not_exited` (409), `monitoring.visit_required`, "
                "`monitoring.visit_mismatch`, `monitoring.future_date` (422), `monitoring.wrong_source` (403), "
                "a household or visit outside your area or not yours (404).",
)
async def raise_warning(body: WarningCreate, session: SessionDep,
                        principal: Principal = Authorized(Perm.monitoring_warn)) -> WarningRead:
    return WarningRead.model_validate(await service.raise_warning(session, principal=principal, body=body))


@router.get(
    "/monitoring/warnings", summary="Warnings in your area (a cadre: those routed to them)",
    response_model=Page[WarningRead], responses=problem_responses(403),
    description="Every staff role within its area; a cadre sees the warnings routed to them. Changes nothing.",
)
async def list_warnings(
    session: SessionDep, principal: Principal = Authorized(Perm.monitoring_read), area: OptionalAreaQ = None,
    monitored_household_id: uuid.UUID | None = None, source: WarningSource | None = None, limit: LimitQ = 100,
    cursor: uuid.UUID | None = None,
) -> Page[WarningRead]:
    rows = await service.list_warnings(session, principal=principal, area=area,
                                       monitored_household_id=monitored_household_id, source=source, limit=limit,
                                       after=cursor)
    items = [WarningRead.model_validate(w) for w in rows]
    return Page[WarningRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.post(
    "/monitoring/screenings", summary="Upload a department's screening file (CSV or .xlsx), all or nothing",
    status_code=201, response_model=ScreeningRead, responses=problem_responses(403, 404, 409, 413),
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
    description="Poverty office. The body is the file: columns 身份证号, 姓名, 日期 (YYYY-MM-DD) and 金额 (yuan; "
                "required for `medical` and `disaster`). Rows are matched to people of the county by ID number; "
                "every household above the expense rule (or, for sources without amounts, every match) gets a "
                "warning routed to its village and paired cadre. Any bad row refuses the whole file: 422 "
                "`screening.file_invalid` with `extra.errors[]` (row, column, code). The same file twice: 409 "
                "`screening.duplicate_file`. Unknown ID numbers are not errors: their rows read `unmatched`.",
)
async def upload_screening(
    request: Request, session: SessionDep, area_code: AreaQ, source: ScreeningSource,
    principal: Principal = Authorized(Perm.monitoring_screening_upload),
    received_on: Annotated[Day | None, Query(description="Default today", examples=["2026-10-09"])] = None,
    filename: Annotated[str, Query(max_length=200)] = "",
) -> ScreeningRead:
    content = await request.body()
    if len(content) > MAX_UPLOAD:
        raise RuleViolation("import.too_large", "the file is too large", "文件过大", status=413)
    if not content:
        raise RuleViolation("import.empty", "send the file as the request body", "请上传文件")
    row = await screening.upload(session, principal=principal, area_code=area_code, source=source, content=content,
                                 filename=filename, received_on=received_on)
    return ScreeningRead.model_validate(row)


@router.get(
    "/monitoring/screenings", summary="Screening files applied in your area", response_model=Page[ScreeningRead],
    responses=problem_responses(403),
    description="Poverty office, station, village committee, county admin and auditor. Changes nothing.",
)
async def list_screenings(
    session: SessionDep, principal: Principal = Authorized(Perm.monitoring_screening_read),
    source: ScreeningSource | None = None, limit: LimitQ = 100, cursor: CursorQ = None,
) -> Page[ScreeningRead]:
    rows, next_cursor = await screening.list_screenings(session, principal=principal, source=source, limit=limit,
                                                        cursor=cursor)
    return Page[ScreeningRead](items=[ScreeningRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/monitoring/screenings/{screening_id}", summary="One screening file with its counts",
    response_model=ScreeningRead, responses=problem_responses(403, 404),
    description="As the list. Another county's file answers 404.",
)
async def get_screening(screening_id: uuid.UUID, session: SessionDep,
                        principal: Principal = Authorized(Perm.monitoring_screening_read)) -> ScreeningRead:
    return ScreeningRead.model_validate(await screening.get(session, principal=principal, screening_id=screening_id))


@router.get(
    "/monitoring/screenings/{screening_id}/rows", summary="Per-row results of a screening file",
    response_model=Page[ScreeningRowRead], responses=problem_responses(403, 404),
    description="As the list; rows in file order (cursor: the last row number). ID numbers are masked; names "
                "are kept only of people matched in the area. A village sees its own households' rows.",
)
async def screening_rows(
    screening_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.monitoring_screening_read),
    outcome: RowOutcome | None = None, after_row: Annotated[int, Query(ge=0)] = 0, limit: LimitQ = 100,
) -> Page[ScreeningRowRead]:
    rows = await screening.rows(session, principal=principal, screening_id=screening_id, outcome=outcome,
                                after_row=after_row, limit=limit)
    items = [ScreeningRowRead.model_validate(r) for r in rows]
    return Page[ScreeningRowRead](items=items, next_cursor=str(items[-1].row_no) if len(items) == limit else None)


# --- monitored households ------------------------------------------------------------------------------------


@router.post(
    "/monitored-households", summary="Enter a household outside the registry for monitoring", status_code=201,
    response_model=MonitoredHouseholdDetail, responses=problem_responses(403, 404, 409),
    description="Village committee, station or poverty office. A low-income household never registered "
                "(`marginal`) or one in sudden severe difficulty (`sudden_hardship`), with its people and the risk "
                "that brings it in: opens its first cycle (`warned`). Errors: `monitoring.person_in_registry` and "
                "`monitoring.person_already_monitored` (409), `monitoring.head_count`, ID number errors (422).",
)
async def enter_household(body: MonitoredHouseholdCreate, session: SessionDep,
                          principal: Principal = Authorized(Perm.monitoring_enter)) -> MonitoredHouseholdDetail:
    mh = await service.enter_household(session, principal=principal, body=body)
    return await queries.household_detail(session, principal=principal, monitored_household_id=mh.id,
                                          as_of=business_date())


@router.get(
    "/monitored-households", summary="Monitored households in your area; overdue lists",
    response_model=Page[MonitoredHouseholdRead], responses=problem_responses(403),
    description="Every staff role within its area; a cadre sees the households they are responsible for. "
                "`overdue=decision`: undecided after the decision deadline; `overdue=measures`: monitored with no "
                "measure started by the measure deadline. Changes nothing.",
)
async def list_households(
    session: SessionDep, principal: Principal = Authorized(Perm.monitoring_read), area: OptionalAreaQ = None,
    status: Status | None = None, kind: MonitoringKind | None = None,
    overdue: queries.Overdue | None = None, as_of: AsOfQ = None, limit: LimitQ = 100, cursor: uuid.UUID | None = None,
) -> Page[MonitoredHouseholdRead]:
    items = await queries.list_households(session, principal=principal, area=area, status=status, kind=kind,
                                          overdue=overdue, as_of=as_of or business_date(), limit=limit, after=cursor)
    return Page[MonitoredHouseholdRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get(
    "/monitored-households/{monitored_household_id}", summary="One monitored household with its people",
    response_model=MonitoredHouseholdDetail, responses=problem_responses(403, 404),
    description="As the list. ID numbers are masked unless the role sees full numbers. Another area's household "
                "(or, for a cadre, one not theirs) answers 404.",
)
async def get_household(monitored_household_id: uuid.UUID, session: SessionDep,
                        principal: Principal = Authorized(Perm.monitoring_read), as_of: AsOfQ = None
                        ) -> MonitoredHouseholdDetail:
    return await queries.household_detail(session, principal=principal, monitored_household_id=monitored_household_id,
                                          as_of=as_of or business_date())


@router.put(
    "/monitored-households/{monitored_household_id}/cadre", summary="Name the household's responsible cadre",
    response_model=MonitoredHouseholdDetail, responses=problem_responses(403, 404, 409),
    description="Station or poverty office, for a household without an active pairing (one outside the registry, "
                "or an exited one, which the pairing domain no longer pairs). The pairing domain's cadre rules "
                "apply: same county, active (`pairing.cadre_inactive`), under the county's cap "
                "(`pairing.cadre_at_capacity`). A household with an active pairing: `monitoring.already_paired` "
                "(409). Later warnings are routed to this cadre.",
)
async def assign_cadre(monitored_household_id: uuid.UUID, body: CadreAssign, session: SessionDep,
                       principal: Principal = Authorized(Perm.monitoring_cadre_assign)) -> MonitoredHouseholdDetail:
    await service.assign_cadre(session, principal=principal, monitored_household_id=monitored_household_id,
                               cadre_id=body.cadre_id, on=body.on)
    return await queries.household_detail(session, principal=principal, monitored_household_id=monitored_household_id,
                                          as_of=business_date())


@router.post(
    "/monitored-households/{monitored_household_id}/steps", summary="Take the next workflow step",
    status_code=201, response_model=StepRead, responses=problem_responses(403, 404, 409),
    description="Each step by its role: `verify` and `village_review` (village committee); `township_check` or "
                "`township_return` (station); `decide_monitor` or `decide_dismiss` (poverty office); then "
                "`propose_elimination` (village, only when the elimination rule holds), "
                "`township_confirm_elimination`/`township_reject_elimination` (station), `decide_elimination`/"
                "`reject_elimination` (poverty office). Errors: `monitoring.wrong_role` (403), "
                "`monitoring.invalid_transition` (409), `monitoring.elimination_rule_not_met` with reasons, "
                "`monitoring.opinion_required`, `monitoring.step_date_order` (422).",
)
async def take_step(monitored_household_id: uuid.UUID, body: StepIn, session: SessionDep,
                    principal: Principal = Authorized(Perm.monitoring_step)) -> StepRead:
    row = await workflow.take_step(session, principal=principal, monitored_household_id=monitored_household_id,
                                   body=body)
    return StepRead.model_validate(row)


@router.get(
    "/monitored-households/{monitored_household_id}/steps", summary="The household's workflow history, every cycle",
    response_model=Page[StepRead], responses=problem_responses(403, 404),
    description="As the household read. Immutable rows, each with role, actor, date, opinion and findings.",
)
async def list_steps(monitored_household_id: uuid.UUID, session: SessionDep,
                     principal: Principal = Authorized(Perm.monitoring_read)) -> Page[StepRead]:
    rows = await workflow.list_steps(session, principal=principal, monitored_household_id=monitored_household_id)
    return Page[StepRead](items=[StepRead.model_validate(r) for r in rows])


@router.post(
    "/monitored-households/{monitored_household_id}/measures", summary="Record an assistance measure",
    status_code=201, response_model=MeasureRead, responses=problem_responses(403, 404, 409),
    description="Village committee, station, poverty office, or the responsible cadre (for their own households). "
                "Only for a household the county decided to monitor (`monitoring.not_monitored`, 409).",
)
async def add_measure(monitored_household_id: uuid.UUID, body: MeasureCreate, session: SessionDep,
                      principal: Principal = Authorized(Perm.monitoring_measure_write)) -> MeasureRead:
    row = await measures.add_measure(session, principal=principal, monitored_household_id=monitored_household_id,
                                     body=body)
    return MeasureRead.model_validate(row)


@router.get(
    "/monitored-households/{monitored_household_id}/measures", summary="The household's assistance measures",
    response_model=Page[MeasureRead], responses=problem_responses(403, 404),
    description="As the household read. Changes nothing.",
)
async def list_measures(monitored_household_id: uuid.UUID, session: SessionDep,
                        principal: Principal = Authorized(Perm.monitoring_read)) -> Page[MeasureRead]:
    rows = await measures.list_measures(session, principal=principal, monitored_household_id=monitored_household_id)
    return Page[MeasureRead](items=[MeasureRead.model_validate(r) for r in rows])


@router.patch(
    "/monitored-households/{monitored_household_id}/measures/{measure_id}", summary="Update a measure's status",
    response_model=MeasureRead, responses=problem_responses(403, 404),
    description="As recording a measure. Changes only the status (planned, in_progress, done).",
)
async def update_measure(monitored_household_id: uuid.UUID, measure_id: uuid.UUID, body: MeasureUpdate,
                         session: SessionDep, principal: Principal = Authorized(Perm.monitoring_measure_write)
                         ) -> MeasureRead:
    row = await measures.update_measure(session, principal=principal, monitored_household_id=monitored_household_id,
                                        measure_id=measure_id, status=body.status)
    return MeasureRead.model_validate(row)


@router.get(
    "/reports/monitoring", summary="Monitoring figures of a county or township for a year",
    response_model=MonitoringReport, responses=problem_responses(403, 404),
    description="Every staff role except cadres, for an area within its own. Households by kind, cause, township "
                "and month; the share of monitored households with measures; time from warning to decision; "
                "claims and payouts (persons aided, paid, per person); eliminations; a per-township monthly trend.",
)
async def monitoring_report(
    session: SessionDep, area_code: AreaQ, year: Annotated[int, Query(ge=2000, le=2100, examples=[2026])],
    principal: Principal = Authorized(Perm.monitoring_report), as_of: AsOfQ = None,
) -> MonitoringReport:
    return await queries.report(session, principal=principal, area=area_code, year=year,
                                as_of=as_of or business_date())
