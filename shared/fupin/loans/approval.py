"""Applications and their workflow (第十二条): village committee → township station (5 working days) →
credit coop (10 working days) → approved | rejected; above the threshold the poverty office and the
credit union approve first. Enterprise loans (第十三条): poverty office review, credit union decision."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of, township_of
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import Conflict, Forbidden, RuleViolation, not_found
from fupin.households.models import Household, Member
from fupin.loans import service as config
from fupin.loans import workdays
from fupin.loans.models import Loan, LoanApplication, LoanApplicationStep, LoanCertificate, LoanNotification
from fupin.loans.statuses import ApplicationStatus, CertificateStatus
from fupin.paging import after, count, page

STATION_DAYS = 5
COOP_DAYS = 10
LABOUR = ("ordinary", "skilled", "weak")
A = ApplicationStatus
ZH_STATUS: dict[str, str] = {
    A.village_reviewed: "村委会已初审", A.station_reviewed: "乡镇扶贫工作站已审查推荐", A.coop_assessed: "信用社已完成资信调查",
    A.county_reviewed: "县扶贫办已审查", A.approved: "贷款已批准", A.rejected: "贷款申请未获批准",
    A.disbursed: "贷款已发放", A.repaid: "贷款已还清",
}


@dataclass(frozen=True)
class Transition:
    role: Role
    kinds: tuple[str, ...]
    from_states: tuple[ApplicationStatus, ...]
    to_state: ApplicationStatus | None  # None: records an approval without moving the status


REVIEWED = (A.station_reviewed, A.coop_assessed)
TRANSITIONS: dict[str, Transition] = {
    "village_review": Transition(Role.village_committee, ("household",), (A.submitted,), A.village_reviewed),
    "village_reject": Transition(Role.village_committee, ("household",), (A.submitted,), A.rejected),
    "station_recommend": Transition(Role.township_station, ("household",), (A.village_reviewed,), A.station_reviewed),
    "station_reject": Transition(Role.township_station, ("household",), (A.village_reviewed,), A.rejected),
    "coop_assess": Transition(Role.credit_coop, ("household",), (A.station_reviewed,), A.coop_assessed),
    "poverty_office_approve": Transition(Role.poverty_office, ("household",), REVIEWED, None),
    "credit_union_approve": Transition(Role.credit_union, ("household",), REVIEWED, None),
    "poverty_office_review": Transition(Role.poverty_office, ("enterprise",), (A.submitted,), A.county_reviewed),
    "approve": Transition(Role.credit_coop, ("household",), (A.coop_assessed,), A.approved),
    "reject": Transition(Role.credit_coop, ("household",), REVIEWED, A.rejected),
}
ENTERPRISE_DECISIONS = {"approve": ApplicationStatus.approved, "reject": ApplicationStatus.rejected}


def allowed_actions(app: LoanApplication, role: Role) -> list[str]:
    """The steps `role` may post on `app` now, by the same role/kind/status/approval rules add_step applies
    first (date, eligibility and quota checks still run when a step is posted)."""
    if app.applicant_kind == "enterprise" and app.status == ApplicationStatus.county_reviewed:
        return list(ENTERPRISE_DECISIONS) if role is Role.credit_union else []
    out = []
    for step, tr in TRANSITIONS.items():
        if role is not tr.role or app.applicant_kind not in tr.kinds or app.status not in tr.from_states:
            continue
        if step in ("poverty_office_approve", "credit_union_approve"):
            field = "poverty_office_approved_on" if step == "poverty_office_approve" else "credit_union_approved_on"
            if not app.needs_county_approval or getattr(app, field) is not None:
                continue
        if tr.to_state == "approved" and app.needs_county_approval and not (
                app.poverty_office_approved_on and app.credit_union_approved_on):
            continue
        out.append(step)
    return out


def _refuse(code: str, en: str, zh: str) -> RuleViolation:
    return RuleViolation(code, en, zh)


async def check_eligibility(
    session: AsyncSession, *, kind: str, product: str, household: Household | None, member_id: uuid.UUID | None,
    township_code: str, amount: object, term_months: int, on: date, exclude_loan_of: uuid.UUID | None = None,
) -> None:
    """第五条 and the product terms; raises the first refusal with its own code."""
    from decimal import Decimal

    amount = Decimal(str(amount))
    terms = await config.terms_for(session, county_code=county_of(township_code), product=product, on=on)
    if kind == "household":
        assert household is not None
        if not await config.township_ready(session, township_code):
            raise _refuse("loan.township_not_ready", "the township is not yet ready to take loan applications",
                          "本乡镇尚未具备开展扶贫到户贷款的条件")
        members = (await session.scalars(select(Member).where(Member.household_id == household.id,
                                                              Member.active))).all()
        if product == "household":
            cert = await session.scalar(select(LoanCertificate.status).where(
                LoanCertificate.household_id == household.id))
            if cert != CertificateStatus.issued:
                raise _refuse("loan.no_certificate", "the household has no issued loan certificate", "该户未取得贷款证")
            applicant = next((m for m in members if m.id == member_id), None) if member_id else None
            if member_id and applicant is None:
                raise not_found("household_member")
            if applicant is not None and not applicant.full_civil_capacity:
                raise _refuse("loan.applicant_no_civil_capacity", "the applicant lacks full civil capacity",
                              "申请人不具备完全民事行为能力")
            if household.category == "tekun":
                raise _refuse("loan.wubao_household", "五保/特困供养 households cannot borrow (第五条4)",
                              "五保户及类似五保户的无劳动能力农户不予贷款")
            if not any(m.labour in LABOUR for m in members):
                raise _refuse("loan.household_no_labour", "no member of the household has labour capacity",
                              "该户没有生产经营能力")
            outstanding = await session.scalar(select(func.count()).select_from(Loan).where(
                Loan.household_id == household.id, Loan.outstanding > 0,
                *([Loan.application_id != exclude_loan_of] if exclude_loan_of else [])))
            if outstanding:
                raise _refuse("loan.outstanding_loan", "an earlier loan is not repaid", "原贷款没有还清")
        if terms.max_amount is not None:
            cap = terms.max_amount * (max(len(members), 1) if terms.per_member else 1)
            if amount > cap:
                raise _refuse("loan.amount_over_cap", f"the amount exceeds the cap of {cap}", f"贷款金额超过上限 {cap} 元")
    if term_months > terms.max_term_months:
        raise _refuse("loan.term_over_limit", f"the term exceeds {terms.max_term_months} months",
                      f"贷款期限超过 {terms.max_term_months} 个月")


async def _notify(session: AsyncSession, app: LoanApplication, message: str) -> None:
    session.add(LoanNotification(area_code=app.area_code, household_id=app.household_id, application_id=app.id,
                                 message=message))


async def submit(
    session: AsyncSession, *, principal: Principal, product: str, household_id: uuid.UUID | None,
    applicant_member_id: uuid.UUID | None, enterprise_name: str | None, township_code: str | None,
    amount: object, term_months: int, purpose: str, on: date | None,
) -> LoanApplication:
    from decimal import Decimal

    on = on or business_date()
    if on > business_date():
        raise _refuse("loan.date_in_future", "the date lies in the future", "日期不能晚于今天")
    household: Household | None = None
    if product == "enterprise":
        if not enterprise_name or not township_code or household_id:
            raise _refuse("loan.enterprise_fields", "enterprise loans need enterprise_name and township_code only",
                          "企业贷款须填写企业名称和乡镇代码")
        if level_of(township_code) is not Level.township or not visible(principal, township_code):
            raise not_found("township")
        kind, area, township = "enterprise", township_code, township_code
    else:
        if household_id is None or enterprise_name:
            raise _refuse("loan.household_fields", "household loans need household_id", "农户贷款须指定农户")
        household = await session.scalar(scoped(select(Household).where(Household.id == household_id), principal,
                                                Household.area_code))
        if household is None:
            raise not_found("household")
        kind, area, township = "household", household.area_code, township_of(household.area_code)
    await check_eligibility(session, kind=kind, product=product, household=household, member_id=applicant_member_id,
                            township_code=township, amount=amount, term_months=term_months, on=on)
    terms = await config.terms_for(session, county_code=county_of(township), product=product, on=on)
    amount_d = Decimal(str(amount))
    app = LoanApplication(
        area_code=area, township_code=township, applicant_kind=kind, household_id=household_id,
        applicant_member_id=applicant_member_id, enterprise_name=enterprise_name, product=product, amount=amount_d,
        term_months=term_months, purpose=purpose, subsidy_eligible=purpose != "non_productive",
        family_planning=bool(household and household.family_planning), veteran=bool(household and household.veteran),
        needs_county_approval=terms.approval_threshold is not None and amount_d > terms.approval_threshold,
        status=ApplicationStatus.submitted, submitted_on=on,
    )
    session.add(app)
    await session.flush()
    session.add(LoanApplicationStep(application_id=app.id, area_code=area, step="submit", from_status="",
                                    to_status=ApplicationStatus.submitted, role=principal.role.value, actor=principal.username,
                                    on_date=on, opinion=""))
    await _notify(session, app, "贷款申请已受理")
    await audit.record(session, principal, action="loan.application.submit", entity="loan_application",
                       entity_id=app.id, area_code=area, after={"amount": amount_d, "product": product})
    return app


async def get_application(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                          lock: bool = False) -> LoanApplication:
    stmt = scoped(select(LoanApplication).where(LoanApplication.id == application_id), principal,
                  LoanApplication.area_code)
    app = await session.scalar(stmt.with_for_update() if lock else stmt)
    if app is None:
        raise not_found("loan_application")
    return app


def _last_date(app: LoanApplication) -> date:
    return max(d for d in (app.submitted_on, app.village_reviewed_on, app.station_reviewed_on, app.coop_assessed_on,
                           app.poverty_office_approved_on, app.credit_union_approved_on) if d is not None)


async def add_step(
    session: AsyncSession, *, principal: Principal, application_id: uuid.UUID, step: str, opinion: str,
    on: date | None,
) -> LoanApplicationStep:
    app = await get_application(session, principal=principal, application_id=application_id, lock=True)
    on = on or business_date()
    if on > business_date():
        raise _refuse("loan.date_in_future", "the date lies in the future", "日期不能晚于今天")
    if app.applicant_kind == "enterprise" and step in ENTERPRISE_DECISIONS:
        tr = Transition(Role.credit_union, ("enterprise",), (A.county_reviewed,), ENTERPRISE_DECISIONS[step])
    else:
        tr = TRANSITIONS[step]
    if app.applicant_kind not in tr.kinds:
        raise _refuse("loan.step_not_applicable", f"{step} does not apply to {app.applicant_kind} loans",
                      "该步骤不适用于此类贷款")
    if principal.role is not tr.role:
        raise Forbidden("loan.wrong_role", f"{step} is taken by {tr.role}", f"该步骤应由 {tr.role} 办理")
    if app.status not in tr.from_states:
        raise Conflict("loan.invalid_transition", f"{step} is not possible while {app.status}",
                       f"当前状态 {app.status} 不能办理该步骤")
    if on < _last_date(app):
        raise _refuse("loan.step_date_order", "the step date precedes an earlier step", "办理日期早于上一步骤")
    before = app.status
    if step in ("poverty_office_approve", "credit_union_approve"):
        if not app.needs_county_approval:
            raise Conflict("loan.county_approval_not_needed", "the amount needs no county approval",
                           "该金额无需县级审批")
        field = "poverty_office_approved_on" if step == "poverty_office_approve" else "credit_union_approved_on"
        if getattr(app, field) is not None:
            raise Conflict("loan.already_approved", "this approval is recorded already", "已审批")
        setattr(app, field, on)
    elif tr.to_state == "approved":
        if app.needs_county_approval and not (app.poverty_office_approved_on and app.credit_union_approved_on):
            raise Conflict("loan.county_approval_missing",
                           "amounts above the threshold need poverty office and credit union approval first",
                           "超过2万元的贷款须经县扶贫办和县信用联社审批")
        household = await session.get(Household, app.household_id) if app.household_id else None
        await check_eligibility(session, kind=app.applicant_kind, product=app.product, household=household,
                                member_id=app.applicant_member_id, township_code=app.township_code,
                                amount=app.amount, term_months=app.term_months, on=on)
        if app.applicant_kind == "household":
            await config.check_quota(session, township_code=app.township_code, year=on.year, amount=app.amount)
    if tr.to_state is not None:
        app.status = tr.to_state
        if tr.to_state == "village_reviewed":
            app.village_reviewed_on = on
            app.station_due_on = await workdays.add_working_days(session, on, STATION_DAYS)
        elif tr.to_state == "station_reviewed":
            app.station_reviewed_on = on
            app.coop_due_on = await workdays.add_working_days(session, on, COOP_DAYS)
        elif tr.to_state == "coop_assessed":
            app.coop_assessed_on = on
        elif tr.to_state in ("approved", "rejected"):
            app.decided_on = on
    row = LoanApplicationStep(application_id=app.id, area_code=app.area_code, step=step, from_status=before,
                              to_status=app.status, role=principal.role.value, actor=principal.username, on_date=on,
                              opinion=opinion)
    session.add(row)
    await _notify(session, app, f"{ZH_STATUS.get(app.status, app.status)}:{opinion}" if opinion
                  else ZH_STATUS.get(app.status, app.status))
    await session.flush()
    await audit.record(session, principal, action=f"loan.application.{step}", entity="loan_application",
                       entity_id=app.id, area_code=app.area_code, before={"status": before},
                       after={"status": app.status, "opinion": opinion})
    return row


async def list_steps(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID
                     ) -> list[LoanApplicationStep]:
    await get_application(session, principal=principal, application_id=application_id)
    stmt = scoped(select(LoanApplicationStep).where(LoanApplicationStep.application_id == application_id), principal,
                  LoanApplicationStep.area_code)
    return list((await session.scalars(stmt.order_by(LoanApplicationStep.recorded_at, LoanApplicationStep.on_date)
                                       )).all())


SORTS = {
    "submitted_on": (LoanApplication.submitted_on, LoanApplication.id),
    "preference": (LoanApplication.family_planning.desc(), LoanApplication.veteran.desc(),
                   LoanApplication.submitted_on, LoanApplication.id),
    "amount": (LoanApplication.amount.desc(), LoanApplication.id),
}
SORT_KEYS: dict[str, Callable[[LoanApplication], tuple[Any, ...]]] = {
    "submitted_on": lambda a: (a.submitted_on, a.id),
    "preference": lambda a: (a.family_planning, a.veteran, a.submitted_on, a.id),
    "amount": lambda a: (a.amount, a.id),
}


async def list_applications(
    session: AsyncSession, *, principal: Principal, status: str | None, township_code: str | None,
    overdue: bool, as_of: date | None, sort: str, limit: int, cursor: str | None, total: bool = False,
) -> tuple[list[LoanApplication], str | None, int | None]:
    """A page of the applications in the caller's area, and with `total` how many match over all pages."""
    stmt = _applications(principal, status=status, township_code=township_code, overdue=overdue, as_of=as_of)
    rows = (await session.scalars(after(stmt, SORTS[sort], cursor, limit))).all()
    items, next_cursor = page(rows, limit, SORT_KEYS[sort])
    return items, next_cursor, (await count(session, stmt) if total else None)


def _applications(principal: Principal, *, status: str | None, township_code: str | None, overdue: bool,
                  as_of: date | None) -> Select[LoanApplication]:
    stmt = scoped(select(LoanApplication), principal, LoanApplication.area_code)
    if status:
        stmt = stmt.where(LoanApplication.status == status)
    if township_code:
        stmt = stmt.where(LoanApplication.township_code == township_code)
    if overdue:
        today = as_of or business_date()
        stmt = stmt.where(or_(
            and_(LoanApplication.status == ApplicationStatus.village_reviewed, LoanApplication.station_due_on < today),
            and_(LoanApplication.status == ApplicationStatus.station_reviewed, LoanApplication.coop_due_on < today),
        ))
    return stmt
