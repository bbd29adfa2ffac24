"""Subsidy policies, run requests, rosters and a loan's entitlement. Services flush, never commit."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.areas import service as area_service
from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.models import Area
from fupin.areas.scope import in_scope, scoped, visible, within
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import Quarter, business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.models import Household, Member
from fupin.loans.models import Loan, LoanRepayment
from fupin.paging import after, page
from fupin.subsidies import rules
from fupin.subsidies.models import SubsidyPayout, SubsidyPolicy, SubsidyRun
from fupin.subsidies.schemas import LoanSubsidy, Roster, RosterRow, RunRead

PHASES = ("allocation", "preallocation", "settlement")
PHASE_ZH = {"allocation": "资金拨付", "preallocation": "预拨", "settlement": "结算"}


def job_key(phase: str, township: str, quarter: str) -> str:
    return f"subsidy.{phase}:{township}:{quarter}"


def mask_id(id_number: str | None) -> str | None:
    """The roster is a claim document that leaves the system: always masked, by the registry's one rule."""
    return household_rules.mask_id(id_number) if id_number else None


# --- policies -----------------------------------------------------------------------------------


async def policy_on(session: AsyncSession, *, county: str, day: date) -> tuple[Decimal, bool]:
    """(rate, productive_only) in force in `county` on `day`; the regulation's 2.58% when none is set."""
    row = (await session.execute(
        select(SubsidyPolicy.rate, SubsidyPolicy.productive_only)
        .where(SubsidyPolicy.area_code == county, SubsidyPolicy.effective_from <= day)
        .order_by(SubsidyPolicy.effective_from.desc()).limit(1)
    )).first()
    return (row[0], row[1]) if row else (rules.DEFAULT_RATE, True)


async def create_policy(
    session: AsyncSession, *, principal: Principal, effective_from: date, rate: Decimal, productive_only: bool, note: str
) -> SubsidyPolicy:
    county = county_of(principal.area_code)
    exists = await session.scalar(select(SubsidyPolicy.id).where(
        SubsidyPolicy.area_code == county, SubsidyPolicy.effective_from == effective_from))
    if exists is not None:
        raise Conflict("subsidy.policy_exists", f"a policy already takes effect on {effective_from}",
                       f"{effective_from} 已有生效的贴息政策")
    policy = SubsidyPolicy(id=uuid.uuid4(), area_code=county, effective_from=effective_from, rate=rate,
                           day_count="actual/365", productive_only=productive_only, rounding="half_up_fen_per_loan",
                           note=note, created_by=principal.username)
    session.add(policy)
    await session.flush()
    await audit.record(session, principal, action="subsidy.policy.create", entity="subsidy_policy",
                       entity_id=policy.id, area_code=county,
                       after={"effective_from": effective_from, "rate": rate, "productive_only": productive_only})
    await session.refresh(policy)
    return policy


async def list_policies(session: AsyncSession, *, principal: Principal) -> list[SubsidyPolicy]:
    stmt = select(SubsidyPolicy).order_by(SubsidyPolicy.area_code, SubsidyPolicy.effective_from)
    if not principal.is_system:
        stmt = stmt.where(SubsidyPolicy.area_code == county_of(principal.area_code))
    return list((await session.scalars(stmt)).all())


# --- runs ---------------------------------------------------------------------------------------


async def ensure_run(
    session: AsyncSession, *, township: str, quarter: Quarter, phase: str, triggered_by: str
) -> tuple[SubsidyRun, bool]:
    """The run row and its job row, created together once per (township, quarter, phase)."""
    key = job_key(phase, township, str(quarter))
    new_id = await session.scalar(
        pg_insert(SubsidyRun)
        .values(id=uuid.uuid4(), area_code=township, quarter=str(quarter), phase=phase, job_key=key,
                status=rules.RunStatus.pending, triggered_by=triggered_by)
        .on_conflict_do_nothing()
        .returning(SubsidyRun.id)
    )
    # By township, quarter and phase: a planned settlement's run carries its county's job key.
    run = await session.scalar(select(SubsidyRun).where(
        SubsidyRun.area_code == township, SubsidyRun.quarter == str(quarter), SubsidyRun.phase == phase))
    assert run is not None
    if new_id is not None:
        await jobs.request_job(session, kind=f"subsidy.{phase}", key=key, area_code=township, args={"run_id": str(run.id)},
                               requested_by=triggered_by)
    return run, new_id is not None


async def ensure_county_settlement(
    session: AsyncSession, *, county: str, townships: list[str], quarter: Quarter, triggered_by: str
) -> int:
    """A settlement run for each of the county's townships that has none yet, all keyed to ONE county job
    (`subsidy.settlement:{county}:{quarter}`), which settles them together. Townships already requested
    by hand keep their own job. Returns how many runs were created."""
    key = job_key("settlement", county, str(quarter))
    created = (await session.scalars(
        pg_insert(SubsidyRun)
        .values([{"id": uuid.uuid4(), "area_code": t, "quarter": str(quarter), "phase": "settlement", "job_key": key,
                      "status": "pending", "triggered_by": triggered_by,
                  # a multi-row INSERT cannot run the per-row `county` default of fupin.base: given here
                  "county": t[:6]} for t in townships])
        .on_conflict_do_nothing()
        .returning(SubsidyRun.id)
    )).all() if townships else []
    if created:
        await jobs.request_job(session, kind="subsidy.settlement", key=key, area_code=county,
                               args={"quarter": str(quarter)}, requested_by=triggered_by)
    return len(created)


async def request_run(
    session: AsyncSession, *, principal: Principal, township: str, quarter: str, phase: str
) -> SubsidyRun:
    if not visible(principal, township) or level_of(township) is not Level.township:
        raise not_found("township")
    await area_service.get_area(session, principal=principal, code=township)  # 404 unless it exists
    q = Quarter.parse(quarter)
    if phase == "settlement" and business_date() <= q.end:
        raise RuleViolation("subsidy.quarter_not_ended", f"{q} has not ended; settle from {q.next().start}",
                            f"{q} 尚未结束,{q.next().start} 起方可结算")
    run, created = await ensure_run(session, township=township, quarter=q, phase=phase,
                                    triggered_by=principal.username)
    if not created:
        raise Conflict("subsidy.run_exists", f"{phase} for {township} {q} was already requested",
                       f"{township} {q} 的{PHASE_ZH[phase]}已经申请过", extra={"run_id": str(run.id)})
    await audit.record(session, principal, action="subsidy.run.request", entity="subsidy_run", entity_id=run.id,
                       area_code=township, after={"quarter": str(q), "phase": phase})
    return run


async def request_county_runs(
    session: AsyncSession, *, principal: Principal, county: str, quarter: str, phase: str
) -> tuple[list[SubsidyRun], list[SubsidyRun]]:
    """A whole county's quarter in one request (issue 14): (runs requested now, runs that existed before).

    The settlement module's one entry point for a county-level call, so that how a county is run stays its
    own business: today one run and one job per township, exactly what the per-township request and the
    quarterly cron create (same keys, so neither duplicates the other). Townships already requested are
    returned apart, not refused; 409 `subsidy.run_exists` only when every township was."""
    if not visible(principal, county) or level_of(county) is not Level.county:
        raise not_found("county")
    await area_service.get_area(session, principal=principal, code=county)  # 404 unless it exists
    q = Quarter.parse(quarter)
    if phase == "settlement" and business_date() <= q.end:
        raise RuleViolation("subsidy.quarter_not_ended", f"{q} has not ended; settle from {q.next().start}",
                            f"{q} 尚未结束,{q.next().start} 起方可结算")
    townships = (await session.scalars(
        scoped(select(Area.code).where(Area.level == Level.township.value, within(Area.code, county)),
               principal, Area.code).order_by(Area.code))).all()
    requested: list[SubsidyRun] = []
    existing: list[SubsidyRun] = []
    for township in townships:
        run, created = await ensure_run(session, township=township, quarter=q, phase=phase,
                                        triggered_by=principal.username)
        (requested if created else existing).append(run)
    if not requested:
        raise Conflict("subsidy.run_exists", f"{phase} for every township of {county} {q} was already requested",
                       f"{county} {q} 各乡镇的{PHASE_ZH[phase]}均已申请过", extra={"county": county})
    await audit.record(session, principal, action="subsidy.run.request_county", entity="area", entity_id=county,
                       area_code=county, after={"quarter": str(q), "phase": phase,
                                                "townships": [r.area_code for r in requested]})
    return requested, existing


def _view(run: SubsidyRun, job: jobs.JobRun | None) -> RunRead:
    view = RunRead.model_validate(run)
    if job is not None:
        view.job_status, view.attempts, view.last_error = job.status, job.attempts, job.last_error
        view.waiting_for, view.waiting_reason = job.waiting_for, job.waiting_reason
    return view


async def list_runs(
    session: AsyncSession, *, principal: Principal, quarter: str | None = None, phase: str | None = None,
    limit: int = 100, cursor: str | None = None,
) -> tuple[list[RunRead], str | None]:
    stmt = (
        select(SubsidyRun, jobs.JobRun)
        .outerjoin(jobs.JobRun, jobs.JobRun.key == SubsidyRun.job_key)
        .where(in_scope(principal, SubsidyRun.area_code))
    )
    if quarter:
        stmt = stmt.where(SubsidyRun.quarter == quarter)
    if phase:
        stmt = stmt.where(SubsidyRun.phase == phase)
    stmt = after(stmt, (SubsidyRun.created_at.desc(), SubsidyRun.id), cursor, limit)  # newest first
    rows, next_cursor = page((await session.execute(stmt)).all(), limit, lambda r: (r[0].created_at, r[0].id))
    return [_view(run, job) for run, job in rows], next_cursor


async def get_run(session: AsyncSession, *, principal: Principal, run_id: uuid.UUID) -> SubsidyRun:
    run = await session.scalar(scoped(select(SubsidyRun).where(SubsidyRun.id == run_id), principal,
                                      SubsidyRun.area_code))
    if run is None:
        raise not_found("subsidy_run")
    return run


async def run_detail(session: AsyncSession, *, principal: Principal, run_id: uuid.UUID) -> RunRead:
    run = await get_run(session, principal=principal, run_id=run_id)
    job = await session.scalar(select(jobs.JobRun).where(jobs.JobRun.key == run.job_key))
    return _view(run, job)


async def roster(
    session: AsyncSession, *, principal: Principal, run_id: uuid.UUID, coop: str | None = None
) -> Roster:
    """花名册: one row per loan paid by the run (settlement runs only), ID numbers masked."""
    run = await get_run(session, principal=principal, run_id=run_id)
    if run.phase != "settlement":
        raise RuleViolation("subsidy.no_roster", "only settlement runs have a roster", "只有结算批次有花名册")
    head = (
        select(Member.household_id, Member.id_number)
        .where(Member.relation == "户主", Member.active)
        .distinct(Member.household_id)
        .order_by(Member.household_id, Member.created_at)
        .subquery()
    )
    stmt = (
        select(SubsidyPayout, Household.head_name, head.c.id_number)
        .outerjoin(Household, Household.id == SubsidyPayout.household_id)
        .outerjoin(head, head.c.household_id == SubsidyPayout.household_id)
        .where(SubsidyPayout.run_id == run.id)
        .where(
            # a coop's roster: what that coop paid out (enterprise loans are paid by the finance bureau)
            (SubsidyPayout.coop_code == coop) & SubsidyPayout.household_id.is_not(None) if coop else true()
        )
        .order_by(SubsidyPayout.coop_code, SubsidyPayout.area_code, Household.head_name, SubsidyPayout.loan_id)
    )
    rows = [
        RosterRow(loan_id=p.loan_id, household_id=p.household_id, head_name=name, id_number_masked=mask_id(idn),
                  enterprise_name=p.enterprise_name, area_code=p.area_code, coop_code=p.coop_code,
                  principal=p.principal, days=p.days, rate=p.rate, amount=p.amount, paid_on=p.paid_on)
        for p, name, idn in (await session.execute(scoped(stmt, principal, SubsidyPayout.area_code))).all()
    ]
    return Roster(run_id=run.id, township_code=run.area_code, quarter=run.quarter,
                  total=sum((r.amount for r in rows), Decimal("0.00")), rows=rows)


async def loan_subsidy(session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID) -> LoanSubsidy:
    loan = await session.scalar(scoped(select(Loan).where(Loan.id == loan_id), principal, Loan.area_code))
    if loan is None:
        raise not_found("loan")
    rate, productive_only = await policy_on(session, county=county_of(loan.area_code), day=loan.disbursed_on)
    reps = (await session.execute(
        select(LoanRepayment.paid_on, LoanRepayment.amount).where(LoanRepayment.loan_id == loan.id)
    )).all()
    ent = rules.entitlement(
        principal=loan.principal, disbursed_on=loan.disbursed_on, due_on=loan.due_on, productive=loan.productive,
        rate=rate, productive_only=productive_only, repayments=[rules.Repayment(p, a) for p, a in reps],
    )
    payout = await session.scalar(select(SubsidyPayout).where(SubsidyPayout.loan_id == loan.id))
    return LoanSubsidy(
        loan_id=loan.id, eligible=ent.eligible, reason=ent.reason, rate=rate, days=ent.days, amount=ent.amount,
        paid=payout is not None, paid_amount=payout.amount if payout else None,
        paid_on=payout.paid_on if payout else None, run_id=payout.run_id if payout else None,
    )


def now() -> datetime:
    return datetime.now(UTC)
