"""Repayment-rate checks (第九条): policies, the set-based check over all townships of a county,
reads of the immutable records, quota proposals and their confirmation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.scope import bind, scoped, visible, within, within_sql
from fupin.assessment.models import (
    LoanQuotaConfirmed,
    QuotaProposal,
    RepaymentCheck,
    RepaymentPolicy,
)
from fupin.assessment.rules import DEFAULT_POLICY, Policy
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.errors import Conflict, RuleViolation, not_found

MANUAL = "assessment.check"
CHECK_WORK_MEM = "256MB"


# ---------------------------------------------------------------- policies


@dataclass(frozen=True)
class CheckLoan:
    loan_id: uuid.UUID
    area_code: str
    principal: Decimal
    recovered: Decimal
    due_on: date
    overdue: bool


@dataclass(frozen=True)
class ResolvedPolicy:
    policy: Policy
    policy_id: uuid.UUID | None



def _require_county(code: str) -> None:
    if level_of(code) is not Level.county:
        raise RuleViolation("assessment.not_a_county", f"{code} is not a county", f"{code} 不是县级区划")


async def create_policy(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str,
    effective_from: date,
    reward_threshold: Decimal,
    penalty_threshold: Decimal,
    quota_increase: Decimal,
    quota_cut: Decimal,
) -> RepaymentPolicy:
    _require_county(area_code)
    if not visible(principal, area_code):
        raise not_found("area")
    if not (Decimal(0) < penalty_threshold <= reward_threshold <= Decimal(1)):
        raise RuleViolation(
            "assessment.thresholds_unordered",
            "thresholds must satisfy 0 < penalty ≤ reward ≤ 1",
            "考核阈值须满足 0 < 处罚线 ≤ 奖励线 ≤ 1",
        )
    if quota_cut > 1:
        raise RuleViolation("assessment.quota_cut_too_large", "quota cut above 100%", "指标削减不能超过100%")
    exists = await session.scalar(
        select(RepaymentPolicy.id).where(
            RepaymentPolicy.area_code == area_code, RepaymentPolicy.effective_from == effective_from
        )
    )
    if exists is not None:
        raise Conflict(
            "assessment.policy_exists",
            "a policy with this effective date exists; policies are never edited, add a later one",
            "该生效日期的考核政策已存在",
        )
    row = RepaymentPolicy(
        area_code=area_code,
        effective_from=effective_from,
        reward_threshold=reward_threshold,
        penalty_threshold=penalty_threshold,
        quota_increase=quota_increase,
        quota_cut=quota_cut,
        created_by=principal.username,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action="repayment_policy.create", entity="repayment_policy", entity_id=row.id,
        area_code=area_code,
        after={"effective_from": effective_from, "reward_threshold": reward_threshold,
               "penalty_threshold": penalty_threshold, "quota_increase": quota_increase, "quota_cut": quota_cut},
    )
    return row


async def list_policies(session: AsyncSession, *, principal: Principal, area_code: str | None) -> list[RepaymentPolicy]:
    stmt = scoped(select(RepaymentPolicy), principal, RepaymentPolicy.area_code)
    if area_code:
        stmt = stmt.where(RepaymentPolicy.area_code == area_code)
    stmt = stmt.order_by(RepaymentPolicy.area_code, RepaymentPolicy.effective_from)
    return list((await session.scalars(stmt)).all())


async def policy_for(session: AsyncSession, *, county_code: str, on: date) -> ResolvedPolicy:
    """The county's policy in force on `on`; the regulation's defaults when it has none."""
    row = await session.scalar(
        select(RepaymentPolicy)
        .where(RepaymentPolicy.area_code == county_code, RepaymentPolicy.effective_from <= on)
        .order_by(RepaymentPolicy.effective_from.desc())
        .limit(1)
    )
    if row is None:
        return ResolvedPolicy(DEFAULT_POLICY, None)
    return ResolvedPolicy(
        Policy(row.reward_threshold, row.penalty_threshold, row.quota_increase, row.quota_cut), row.id
    )


# ---------------------------------------------------------------- the check

# The loans behind a check: those of the area's townships that fell due in [start, due_until], with the
# principal repaid on them by as_of (partial repayments count by amount, reversals subtract, never above
# the principal). Only rows recorded by `recorded_by` count (the check's own time: `now()` while it runs,
# its `created_at` afterwards), so the inputs of a stored check are reconstructed by this same query
# instead of being copied row by row (repayments are append-only with `recorded_at`). Every constant is
# typed (performance rule 1). Enterprise loans (农业产业化) are county-level and count in no township's rate
# or quota (Q38).
ENTERPRISE = "enterprise"
_DUE = f"""
  SELECT l.id AS loan_id, l.area_code, l.township_code, l.principal, l.due_on,
         LEAST(l.principal, GREATEST(COALESCE(p.amount, CAST(0 AS NUMERIC(14,2))),
                                     CAST(0 AS NUMERIC(14,2)))) AS recovered
  FROM loan l
  JOIN tw ON tw.code = l.township_code
  LEFT JOIN (
    SELECT r.loan_id, SUM(r.amount) AS amount
    FROM loan_repayment r
    WHERE r.paid_on <= CAST(:as_of AS date) AND {within_sql('r.area_code', 'area')}
      AND r.recorded_at <= COALESCE(CAST(:recorded_by AS timestamptz), now())
    GROUP BY r.loan_id
  ) p ON p.loan_id = l.id
  WHERE l.due_on >= CAST(:start AS date) AND l.due_on <= CAST(:due_until AS date)
    AND l.created_at <= COALESCE(CAST(:recorded_by AS timestamptz), now())
    AND l.product <> CAST(:enterprise AS text)
"""
_TOWNSHIPS = f"""
  SELECT a.code FROM area a WHERE a.level = 'township' AND {within_sql('a.code', 'area')}
"""

# Per township totals with exact cross-multiplied band comparisons, written as the check rows in the
# same statement: one aggregate, a few hundred rows written.
_CHECK_SQL = text(
    f"""
WITH tw AS ({_TOWNSHIPS}),
due AS ({_DUE}),
agg AS (
  SELECT tw.code AS township_code,
         COALESCE(SUM(d.principal), CAST(0 AS NUMERIC(14,2))) AS principal_due,
         COALESCE(SUM(d.recovered), CAST(0 AS NUMERIC(14,2))) AS principal_recovered,
         COUNT(d.loan_id) AS loans_due,
         COUNT(d.loan_id) FILTER (WHERE d.recovered >= d.principal) AS loans_recovered,
         COUNT(d.loan_id) FILTER (WHERE d.recovered < d.principal) AS loans_overdue
  FROM tw LEFT JOIN due d ON d.township_code = tw.code
  GROUP BY tw.code
),
ins AS (
  INSERT INTO repayment_check (
    id, area_code, county, county_code, kind, period_start, period_end, as_of, principal_due, principal_recovered,
    rate, band, loans_due, loans_recovered, loans_overdue, policy_id, reward_threshold, penalty_threshold,
    quota_increase, quota_cut, job_key)
  SELECT gen_random_uuid(), a.township_code, left(a.township_code, 6), CAST(:county AS varchar), CAST(:kind AS varchar),
         CAST(:start AS date), CAST(:end AS date), CAST(:as_of AS date), a.principal_due, a.principal_recovered,
         CASE WHEN a.principal_due = 0 THEN NULL
              ELSE ROUND(a.principal_recovered / a.principal_due, 6) END,
         CASE WHEN a.principal_due = 0 THEN 'no_loans_due'
              WHEN a.principal_recovered >= a.principal_due * CAST(:reward AS NUMERIC(9,6)) THEN 'reward'
              WHEN a.principal_recovered >= a.principal_due * CAST(:penalty AS NUMERIC(9,6)) THEN 'standard'
              ELSE 'penalty' END,
         a.loans_due, a.loans_recovered, a.loans_overdue, CAST(:policy_id AS uuid),
         CAST(:reward AS NUMERIC(9,6)), CAST(:penalty AS NUMERIC(9,6)),
         CAST(:increase AS NUMERIC(9,6)), CAST(:cut AS NUMERIC(9,6)), CAST(:job_key AS varchar)
  FROM agg a
  ON CONFLICT (job_key, area_code, county) DO NOTHING
  RETURNING loans_due
)
SELECT COUNT(*) AS checks, COALESCE(SUM(loans_due), 0) AS loans FROM ins
"""
)

# The same aggregate without the writes: the floor `make bench` compares the check with.
AGGREGATE_SQL = text(
    f"""
WITH tw AS ({_TOWNSHIPS}), due AS ({_DUE})
SELECT d.township_code, SUM(d.principal) AS principal_due, SUM(d.recovered) AS principal_recovered,
       COUNT(*) AS loans_due
FROM due d GROUP BY d.township_code
"""
)

# One stored check's loans, reconstructed: the township's range, the check's dates and its own time.
_CHECK_LOANS_SQL = text(
    f"""
WITH tw AS ({_TOWNSHIPS}), due AS ({_DUE})
SELECT d.loan_id, d.area_code, d.principal, d.recovered, d.due_on, d.recovered < d.principal AS overdue
FROM due d
WHERE NOT CAST(:overdue_only AS boolean) OR d.recovered < d.principal
ORDER BY d.due_on, d.loan_id
"""
)


def aggregate_params(*, area_code: str, start: date, due_until: date, as_of: date) -> dict[str, Any]:
    return {**bind("area", area_code), "start": start, "due_until": due_until, "as_of": as_of, "recorded_by": None,
            "enterprise": ENTERPRISE}


async def run_checks(
    session: AsyncSession,
    *,
    area_code: str,
    kind: str,
    period_start: date,
    period_end: date,
    as_of: date,
    job_key: str,
) -> dict[str, Any]:
    """Check every township of `area_code` (a county or one township) in one statement.

    Re-running the same `job_key` inserts nothing new (the check is immutable once written). The loans
    behind a check are not copied: `check_loans` reconstructs them from the check's own dates and time.
    """
    if period_end < period_start or as_of < period_start:
        raise RuleViolation(
            "assessment.bad_period", "period end and as-of date must not precede the start",
            "考核期末和截止日期不能早于期初",
        )
    county = county_of(area_code)
    resolved = await policy_for(session, county_code=county, on=period_end)
    # A province is a million loans grouped by loan: keep the hash aggregate in memory (this transaction only).
    await session.execute(text("SELECT set_config('work_mem', :m, true)"), {"m": CHECK_WORK_MEM})
    p = resolved.policy
    row = (
        await session.execute(
            _CHECK_SQL,
            {
                **aggregate_params(area_code=area_code, start=period_start, due_until=min(period_end, as_of),
                                   as_of=as_of),
                "county": county,
                "kind": kind,
                "end": period_end,
                "reward": p.reward_threshold,
                "penalty": p.penalty_threshold,
                "increase": p.quota_increase,
                "cut": p.quota_cut,
                "policy_id": resolved.policy_id,
                "job_key": job_key,
            },
        )
    ).one()
    return {"checks": int(row.checks), "loans": int(row.loans), "policy_id": str(resolved.policy_id or "default")}


async def request_check(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str,
    period_start: date,
    period_end: date,
    as_of: date,
) -> tuple[jobs.JobRun, bool]:
    """Ask the worker for a check of a county or a township; the same request twice is one run."""
    if level_of(area_code) not in (Level.county, Level.township) or not visible(principal, area_code):
        raise not_found("area")
    if period_end < period_start or as_of < period_start:
        raise RuleViolation(
            "assessment.bad_period", "period end and as-of date must not precede the start",
            "考核期末和截止日期不能早于期初",
        )
    key = f"{MANUAL}:{area_code}:{period_start.isoformat()}:{period_end.isoformat()}:{as_of.isoformat()}"
    run, created = await jobs.request_job(
        session, kind=MANUAL, key=key, area_code=area_code, requested_by=principal.username,
        args={"area_code": area_code, "period_start": period_start.isoformat(),
              "period_end": period_end.isoformat(), "as_of": as_of.isoformat()},
    )
    if created:
        await audit.record(
            session, principal, action="repayment_check.request", entity="job_run", entity_id=run.id,
            area_code=area_code, after={"key": key},
        )
    return run, created


# ---------------------------------------------------------------- reads


async def list_checks(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str | None = None,
    kind: str | None = None,
    band: str | None = None,
    period_end: date | None = None,
    limit: int = 100,
    after: uuid.UUID | None = None,
) -> list[RepaymentCheck]:
    stmt = scoped(select(RepaymentCheck), principal, RepaymentCheck.area_code)
    if area_code:
        stmt = stmt.where(within(RepaymentCheck.area_code, area_code))
    if kind:
        stmt = stmt.where(RepaymentCheck.kind == kind)
    if band:
        stmt = stmt.where(RepaymentCheck.band == band)
    if period_end:
        stmt = stmt.where(RepaymentCheck.period_end == period_end)
    if after:
        stmt = stmt.where(RepaymentCheck.id > after)
    stmt = stmt.order_by(RepaymentCheck.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def get_check(session: AsyncSession, *, principal: Principal, check_id: uuid.UUID) -> RepaymentCheck:
    row = await session.scalar(
        scoped(select(RepaymentCheck).where(RepaymentCheck.id == check_id), principal, RepaymentCheck.area_code)
    )
    if row is None:
        raise not_found("repayment_check")
    return row


async def check_loans(
    session: AsyncSession, *, principal: Principal, check_id: uuid.UUID, overdue_only: bool = False
) -> list[CheckLoan]:
    """The loans behind a check as they stood on its as-of date, reconstructed by the check's own query
    (repayments recorded after the check do not count)."""
    check = await get_check(session, principal=principal, check_id=check_id)
    params = aggregate_params(area_code=check.area_code, start=check.period_start,
                              due_until=min(check.period_end, check.as_of), as_of=check.as_of)
    rows = (await session.execute(
        _CHECK_LOANS_SQL, {**params, "recorded_by": check.created_at, "overdue_only": overdue_only}
    )).all()
    return [CheckLoan(r.loan_id, r.area_code, r.principal, r.recovered, r.due_on, r.overdue) for r in rows
            if visible(principal, r.area_code)]


# ---------------------------------------------------------------- quotas

# One row per township checked by the annual run: the current quota (this year's confirmed quota)
# moved by the band's change, rounded half-up to the fen; working funds unless penalised.
_PROPOSE_SQL = text(
    """
INSERT INTO quota_proposal (
  id, area_code, county, county_code, year, check_id, band, current_quota, quota_change, proposed_quota,
  working_funds_eligible, reward, status)
SELECT gen_random_uuid(), c.area_code, left(c.area_code, 6), c.county_code, CAST(:year AS integer), c.id, c.band, q.amount,
       CASE c.band WHEN 'reward' THEN c.quota_increase WHEN 'penalty' THEN -c.quota_cut
            ELSE CAST(0 AS NUMERIC(9,6)) END,
       ROUND(q.amount * (CAST(1 AS NUMERIC(9,6)) +
             CASE c.band WHEN 'reward' THEN c.quota_increase WHEN 'penalty' THEN -c.quota_cut
                  ELSE CAST(0 AS NUMERIC(9,6)) END), 2),
       c.band <> 'penalty', c.band = 'reward', 'proposed'
FROM repayment_check c
LEFT JOIN loan_quota q ON q.area_code = c.area_code AND q.year = CAST(:current_year AS integer)
WHERE c.job_key = CAST(:job_key AS varchar)
ON CONFLICT (area_code, year, county) DO NOTHING
"""
)


async def propose_quotas(session: AsyncSession, *, job_key: str, assessed_year: int) -> int:
    """Proposals for `assessed_year + 1` from the annual checks written under `job_key`."""
    result = await session.execute(
        _PROPOSE_SQL, {"year": assessed_year + 1, "current_year": assessed_year, "job_key": job_key}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def list_proposals(
    session: AsyncSession, *, principal: Principal, year: int | None, status: str | None, limit: int = 200
) -> list[QuotaProposal]:
    stmt = scoped(select(QuotaProposal), principal, QuotaProposal.area_code)
    if year is not None:
        stmt = stmt.where(QuotaProposal.year == year)
    if status:
        stmt = stmt.where(QuotaProposal.status == status)
    stmt = stmt.order_by(QuotaProposal.year.desc(), QuotaProposal.area_code).limit(limit)
    return list((await session.scalars(stmt)).all())


async def get_proposal(session: AsyncSession, *, principal: Principal, proposal_id: uuid.UUID) -> QuotaProposal:
    row = await session.scalar(
        scoped(select(QuotaProposal).where(QuotaProposal.id == proposal_id), principal, QuotaProposal.area_code)
    )
    if row is None:
        raise not_found("quota_proposal")
    return row


async def confirm_proposal(
    session: AsyncSession, *, principal: Principal, proposal_id: uuid.UUID, quota: Decimal | None = None
) -> QuotaProposal:
    """The poverty office confirms a proposal (optionally with its own amount); only then does the quota change."""
    proposal = await get_proposal(session, principal=principal, proposal_id=proposal_id)
    amount = quota if quota is not None else proposal.proposed_quota
    if amount is None:
        raise RuleViolation(
            "assessment.no_quota_amount",
            "the township has no current quota to adjust; give the quota to confirm",
            "该乡镇无本年度放贷指标,请填写确认的指标金额",
        )
    now = datetime.now(UTC)
    claimed = await session.execute(
        update(QuotaProposal)
        .where(QuotaProposal.id == proposal.id, QuotaProposal.status == "proposed")
        .values(status="confirmed", confirmed_quota=amount, confirmed_by=principal.username, confirmed_at=now)
        .returning(QuotaProposal.id)
    )
    if claimed.first() is None:
        raise Conflict("assessment.proposal_confirmed", "the proposal is already confirmed", "该指标建议已确认")
    await apply_confirmed_quota(
        session, principal=principal, area_code=proposal.area_code, year=proposal.year, amount=amount,
        working_funds_eligible=proposal.working_funds_eligible, reward=proposal.reward, proposal_id=proposal.id,
    )
    await audit.record(
        session, principal, action="quota_proposal.confirm", entity="quota_proposal", entity_id=proposal.id,
        area_code=proposal.area_code,
        before={"status": "proposed", "proposed_quota": proposal.proposed_quota},
        after={"status": "confirmed", "confirmed_quota": amount},
    )
    await session.refresh(proposal)
    return proposal


async def apply_confirmed_quota(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str,
    year: int,
    amount: Decimal,
    working_funds_eligible: bool,
    reward: bool,
    proposal_id: uuid.UUID | None,
) -> LoanQuotaConfirmed:
    """The one place a confirmed quota is written: the confirmation record, and the township's
    `/loan-quotas` entry for the year that loan approvals are checked against (第九条)."""
    from fupin.loans import service as loan_service

    exists = await session.scalar(
        select(LoanQuotaConfirmed.id).where(LoanQuotaConfirmed.area_code == area_code, LoanQuotaConfirmed.year == year)
    )
    if exists is not None:
        raise Conflict("assessment.quota_exists", f"a quota for {year} is already set", f"{year}年度指标已确定")
    row = LoanQuotaConfirmed(
        area_code=area_code, year=year, amount=amount, working_funds_eligible=working_funds_eligible,
        reward=reward, proposal_id=proposal_id, confirmed_by=principal.username,
    )
    session.add(row)
    await session.flush()
    await loan_service.set_quota(session, principal=principal, township_code=area_code, year=year, amount=amount)
    return row
