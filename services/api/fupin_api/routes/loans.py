"""Special-preference loans: products, readiness, quotas, certificates, applications, loans, notices, reports."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.calendar import Quarter
from fupin.loans import approval, queries, reads, service
from fupin.loans.models import LoanCertificate
from fupin.loans.schemas import (
    ApplicationCreate,
    ApplicationRead,
    CertificateIssue,
    CertificateRead,
    CertificateReview,
    HolidaySet,
    HolidayYearRead,
    LoanDetail,
    LoanNotice,
    LoanRead,
    NoticeLine,
    ProductRuleCreate,
    ProductRuleRead,
    QuarterlyReport,
    QuotaRead,
    QuotaSet,
    ReadinessRead,
    ReadinessSet,
    Reconciliation,
    ReconciliationLine,
    StepCreate,
    StepRead,
)
from fupin.money import Day
from fupin.schema import Page
from fupin_api.deps import Authorized, Reader, Reading, SessionDep, json_response
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ, LimitQ, TotalQ
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["loans"])
Code = Annotated[str, Path(pattern=r"^\d{12}$")]
CodeQ = Annotated[str, Query(pattern=r"^\d{12}$")]
Limit = LimitQ
QuarterQ = Annotated[str, Query(pattern=r"^\d{4}Q[1-4]$")]


@router.post("/loan-products/rules", summary="Set a product's cap and term for a county from a date",
             response_model=ProductRuleRead, status_code=201, responses=problem_responses(403, 404, 409))
async def create_rule(body: ProductRuleCreate, session: SessionDep,
                      principal: Principal = Authorized(Perm.loan_config_write)) -> ProductRuleRead:
    rule = await service.set_product_rule(session, principal=principal, **body.model_dump())
    return ProductRuleRead.model_validate(rule)


@router.get("/loan-products/rules", summary="A county's product rules", response_model=Page[ProductRuleRead],
            responses=problem_responses(403, 404))
async def list_rules(county: CodeQ, session: SessionDep,
                     principal: Principal = Authorized(Perm.loan_config_read)) -> Page[ProductRuleRead]:
    rules = await service.list_product_rules(session, principal=principal, county_code=county)
    return Page[ProductRuleRead](items=[ProductRuleRead.model_validate(r) for r in rules])


@router.put("/loan-townships/{code}/readiness", summary="Mark a township ready for loan applications (第五条1)",
            response_model=ReadinessRead, responses=problem_responses(403, 404))
async def set_readiness(code: Code, body: ReadinessSet, session: SessionDep,
                        principal: Principal = Authorized(Perm.loan_config_write)) -> ReadinessRead:
    row = await service.set_readiness(session, principal=principal, township_code=code, ready=body.ready,
                                      note=body.note)
    return ReadinessRead.model_validate(row)


@router.get("/loan-townships/{code}/readiness", summary="Whether a township takes loan applications",
            response_model=ReadinessRead, responses=problem_responses(403, 404))
async def get_readiness(code: Code, session: SessionDep,
                        principal: Principal = Authorized(Perm.loan_config_read)) -> ReadinessRead:
    return ReadinessRead.model_validate(await service.get_readiness(session, principal=principal, township_code=code))


@router.put("/loan-quotas", summary="Set a township's annual loan plan (贷款计划)", response_model=QuotaRead,
            responses=problem_responses(403, 404))
async def set_quota(body: QuotaSet, session: SessionDep,
                    principal: Principal = Authorized(Perm.loan_quota_write)) -> QuotaRead:
    quota, used = await service.set_quota(session, principal=principal, township_code=body.township_code,
                                          year=body.year, amount=body.amount)
    return QuotaRead(township_code=quota.area_code, year=quota.year, amount=quota.amount, used=used,
                     remaining=quota.amount - used)


@router.get("/loan-quotas", summary="Annual loan plans and their use", response_model=Page[QuotaRead],
            responses=problem_responses(403))
async def list_quotas(year: Annotated[int, Query(ge=2000, le=2100)], session: SessionDep,
                      principal: Principal = Authorized(Perm.loan_config_read)) -> Page[QuotaRead]:
    rows = await service.list_quotas(session, principal=principal, year=year)
    return Page[QuotaRead](items=[QuotaRead(township_code=q.area_code, year=q.year, amount=q.amount, used=u, remaining=q.amount - u)
            for q, u in rows])


@router.put("/loan-holidays", summary="Extend the holiday calendar for a year (holidays and 调休 workdays)",
            response_model=HolidayYearRead, responses=problem_responses(403))
async def set_holidays(body: HolidaySet, session: SessionDep,
                       principal: Principal = Authorized(Perm.loan_holiday_write)) -> HolidayYearRead:
    complete, hol, work = await service.set_holidays(session, principal=principal, year=body.year,
                                                     holidays=body.holidays, workdays=body.workdays,
                                                     complete=body.complete)
    return HolidayYearRead(year=body.year, complete=complete, holidays=hol, workdays=work)


@router.get("/loan-holidays", summary="The administrators' additions to the holiday calendar",
            response_model=HolidayYearRead, responses=problem_responses(403))
async def get_holidays(year: Annotated[int, Query(ge=2000, le=2100)], session: SessionDep,
                       principal: Principal = Authorized(Perm.loan_config_read)) -> HolidayYearRead:
    complete, hol, work = await service.get_holidays(session, year=year)
    return HolidayYearRead(year=year, complete=complete, holidays=hol, workdays=work)


def _certificate(cert: LoanCertificate, principal: Principal) -> CertificateRead:
    return CertificateRead.model_validate(cert).model_copy(
        update={"allowed_actions": service.certificate_actions(cert.status, principal.role)})


@router.post("/loan-certificates", summary="Record the village committee's review for a loan certificate",
             response_model=CertificateRead, status_code=201, responses=problem_responses(403, 404, 409))
async def review_certificate(body: CertificateReview, session: SessionDep,
                             principal: Principal = Authorized(Perm.loan_certificate_review)) -> CertificateRead:
    cert = await service.review_certificate(session, principal=principal, household_id=body.household_id,
                                            credit_rating=body.credit_rating, opinion=body.opinion, on=body.on)
    return _certificate(cert, principal)


@router.post("/loan-certificates/{certificate_id}/issue", summary="Issue a reviewed loan certificate (credit coop)",
             response_model=CertificateRead, responses=problem_responses(403, 404, 409))
async def issue_certificate(certificate_id: uuid.UUID, body: CertificateIssue, session: SessionDep,
                            principal: Principal = Authorized(Perm.loan_certificate_issue)) -> CertificateRead:
    cert = await service.issue_certificate(session, principal=principal, certificate_id=certificate_id,
                                           number=body.number, on=body.on)
    return _certificate(cert, principal)


@router.get("/loan-certificates", summary="Loan certificates in your area", response_model=Page[CertificateRead],
            responses=problem_responses(403))
async def list_certificates(session: SessionDep, principal: Principal = Authorized(Perm.loan_read),
                            status: Annotated[Literal["village_reviewed", "issued"] | None, Query()] = None,
                            limit: Limit = 100, cursor: CursorQ = None) -> Page[CertificateRead]:
    rows, next_cursor = await service.list_certificates(session, principal=principal, status=status, limit=limit,
                                                        cursor=cursor)
    return Page[CertificateRead](items=[_certificate(c, principal) for c in rows], next_cursor=next_cursor)


@router.get("/loan-certificates/{certificate_id}", summary="One loan certificate", response_model=CertificateRead,
            responses=problem_responses(403, 404))
async def get_certificate(certificate_id: uuid.UUID, session: SessionDep,
                          principal: Principal = Authorized(Perm.loan_read)) -> CertificateRead:
    cert = await service.get_certificate(session, principal=principal, certificate_id=certificate_id)
    return _certificate(cert, principal)


@router.post("/loan-applications", summary="Submit a loan application (eligibility checked)",
             response_model=ApplicationRead, status_code=201, responses=problem_responses(403, 404))
async def submit_application(body: ApplicationCreate, session: SessionDep,
                             principal: Principal = Authorized(Perm.loan_apply)) -> ApplicationRead:
    app = await approval.submit(session, principal=principal, **body.model_dump())
    return ApplicationRead.model_validate(app)


@router.get("/loan-applications", summary="Applications in your area; ?overdue=true lists late reviews",
            response_model=Page[ApplicationRead], responses=problem_responses(403))
async def list_applications(
    session: SessionDep, principal: Principal = Authorized(Perm.loan_read),
    status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,24}$")] = None,
    township: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    overdue: bool = False,
    as_of: Annotated[Day | None, Query(description="evaluate deadlines on this day (default today)")] = None,
    sort: Annotated[Literal["submitted_on", "preference", "amount"], Query(description=(
        "`submitted_on` oldest first; `preference` families with family-planning or veteran preference first, "
        "then oldest; `amount` largest first. Keep the same sort while following `next_cursor`."))] = "submitted_on",
    limit: Limit = 100, cursor: CursorQ = None, total: TotalQ = False,
) -> Page[ApplicationRead]:
    rows, next_cursor, count = await approval.list_applications(
        session, principal=principal, status=status, township_code=township, overdue=overdue, as_of=as_of, sort=sort,
        limit=limit, cursor=cursor, total=total)
    return Page[ApplicationRead](items=[ApplicationRead.model_validate(a) for a in rows], next_cursor=next_cursor,
                                 total=count)


@router.get("/loan-applications/{application_id}", summary="One application", response_model=ApplicationRead,
            responses=problem_responses(403, 404))
async def get_application(application_id: uuid.UUID, session: SessionDep,
                          principal: Principal = Authorized(Perm.loan_read)) -> ApplicationRead:
    app = await approval.get_application(session, principal=principal, application_id=application_id)
    return ApplicationRead.model_validate(app).model_copy(
        update={"allowed_actions": approval.allowed_actions(app, principal.role)})


@router.post("/loan-applications/{application_id}/steps", summary="Take a workflow step (review, approval, decision)",
             response_model=StepRead, status_code=201, responses=problem_responses(403, 404, 409))
async def add_step(application_id: uuid.UUID, body: StepCreate, session: SessionDep,
                   principal: Principal = Authorized(Perm.loan_step)) -> StepRead:
    row = await approval.add_step(session, principal=principal, application_id=application_id, step=body.step,
                                  opinion=body.opinion, on=body.on)
    app = await approval.get_application(session, principal=principal, application_id=application_id)
    return StepRead.model_validate(row).model_copy(update={
        "station_due_on": app.station_due_on, "coop_due_on": app.coop_due_on,
        "allowed_actions": approval.allowed_actions(app, principal.role)})


@router.get("/loan-applications/{application_id}/steps", summary="The application's step history",
            response_model=Page[StepRead], responses=problem_responses(403, 404))
async def list_steps(application_id: uuid.UUID, session: SessionDep,
                     principal: Principal = Authorized(Perm.loan_read)) -> Page[StepRead]:
    rows = await approval.list_steps(session, principal=principal, application_id=application_id)
    return Page[StepRead](items=[StepRead.model_validate(r) for r in rows])


@router.get("/loans", summary="Loans in your area", response_model=Page[LoanRead], responses=problem_responses(403))
async def list_loans(
    session: SessionDep, principal: Principal = Authorized(Perm.loan_read),
    status: Literal["current", "repaid_on_time", "repaid_late", "overdue"] | None = None,
    township: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    limit: Limit = 100, cursor: CursorQ = None,
) -> Page[LoanRead]:
    rows, next_cursor = await queries.list_loans(session, principal=principal, status=status, township_code=township,
                                                 limit=limit, cursor=cursor)
    today = queries.business_date()
    return Page[LoanRead](items=[LoanRead.model_validate(r).model_copy(
        update={"status": queries.display_status(r, today)}) for r in rows], next_cursor=next_cursor)


@router.get("/loans/{loan_id}", summary="One loan with its repayments", response_model=LoanDetail,
            responses=problem_responses(403, 404))
async def get_loan(loan_id: uuid.UUID, reader: Reader = Reading(Perm.loan_read)) -> Response:
    async with reader.transaction() as conn:
        row = await reads.loan(conn, principal=reader.principal, loan_id=loan_id)
    return json_response(row)


@router.get("/notices/loans", summary="Monthly public notice (公示) of a township's loans",
            response_model=LoanNotice, responses=problem_responses(403, 404))
async def loan_notice(township: CodeQ, month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")], session: SessionDep,
                      principal: Principal = Authorized(Perm.loan_report_read)) -> LoanNotice:
    rec, dec, dis = await queries.notice(session, principal=principal, township_code=township, month=month)

    def lines(rows: list[queries.NoticeRow]) -> list[NoticeLine]:
        return [NoticeLine(application_id=r.application_id, area_code=r.area_code, applicant=r.applicant,
                           amount=r.amount, purpose=r.purpose, on=r.on, outcome=r.outcome) for r in rows]

    return LoanNotice(township_code=township, month=month, recommended=lines(rec), decisions=lines(dec),
                      disbursements=lines(dis))


def _report(township: str, quarter: Quarter, version: Literal["station", "coop"],
            lines: dict[uuid.UUID, queries.Line]) -> QuarterlyReport:
    count, dis, rec = queries.totals(lines, version)
    return QuarterlyReport(township_code=township, quarter=str(quarter), version=version,
                           due_on=queries.report_due(quarter), disbursed_count=count, disbursed_amount=dis,
                           recovered_amount=rec)


@router.get("/reports/loans-quarterly", summary="Quarterly disbursement and recovery (station's or coop's version)",
            response_model=QuarterlyReport, responses=problem_responses(403, 404))
async def loans_quarterly(township: CodeQ, quarter: QuarterQ, session: SessionDep,
                          principal: Principal = Authorized(Perm.loan_report_read),
                          version: Literal["station", "coop"] = "station") -> QuarterlyReport:
    q = Quarter.parse(quarter)
    lines = await queries.quarter_lines(session, principal=principal, township_code=township, quarter=q)
    return _report(township, q, version, lines)


@router.get("/reports/loans-quarterly/reconciliation", summary="Station's vs coop's quarterly report, loan by loan",
            response_model=Reconciliation, responses=problem_responses(403, 404))
async def loans_reconciliation(township: CodeQ, quarter: QuarterQ, session: SessionDep,
                               principal: Principal = Authorized(Perm.loan_report_read)) -> Reconciliation:
    q = Quarter.parse(quarter)
    lines = await queries.quarter_lines(session, principal=principal, township_code=township, quarter=q)
    diffs = [ReconciliationLine(application_id=ln.application_id, loan_id=ln.loan_id,
                                station_disbursed=ln.station_disbursed, coop_disbursed=ln.coop_disbursed,
                                station_recovered=ln.station_recovered, coop_recovered=ln.coop_recovered)
             for ln in queries.differences(lines)]
    return Reconciliation(township_code=township, quarter=str(q), station=_report(township, q, "station", lines),
                          coop=_report(township, q, "coop", lines), differences=diffs)
