"""The quarterly cycle as keyed jobs (`subsidy.{phase}:{township}:{quarter}`), run by the worker.

Fund flow, each step a balanced posting with a reference unique forever:
  allocation     county appropriation → 县财政局 → 乡镇财政所: the quarter's expected subsidy
  preallocation  乡镇财政所 → each 乡镇信用社: expected subsidy of its loans falling due in the quarter
  settlement     信用社 → 农户 the exact entitlement of each loan repaid on time in the quarter (set-based);
                 enterprise loans 县财政局 → 企业; shortfall topped up before, surplus returned after.
The runner commits the effects with the job's `done`, so a crash leaves nothing and a rerun pays once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.areas.codes import county_of
from fupin.areas.models import Area
from fupin.calendar import Quarter, business_date
from fupin.ledger import service as ledger
from fupin.ledger.models import JournalEntry, JournalLine, LedgerAccount
from fupin.subsidies import rules, sql
from fupin.subsidies.models import SubsidyRun
from fupin.subsidies.service import PHASES, ensure_run, job_key

ZERO = Decimal("0.00")
# Job kinds, each spelled once: the worker's schedule and the API import these.
ALLOCATION, PREALLOCATION, SETTLEMENT = "subsidy.allocation", "subsidy.preallocation", "subsidy.settlement"
PLAN = "subsidy.plan"
RATE_PARAM = bindparam("default_rate", value=rules.DEFAULT_RATE, type_=Numeric(9, 6))


async def _accounts(session: AsyncSession, county: str, township: str) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    source = await ledger.ensure_account(session, holder_kind="source", holder_ref=county, purpose="subsidy",
                                         area_code=county, name="县级贴息预算", allow_negative=True)
    bureau = await ledger.ensure_account(session, holder_kind="finance_bureau", holder_ref=county, purpose="subsidy",
                                         area_code=county, name="县财政局贴息专户")
    town = await ledger.ensure_account(session, holder_kind="township_finance", holder_ref=township,
                                       purpose="subsidy", area_code=township, name="乡镇财政所贴息专户")
    return source, bureau, town


async def _coop(session: AsyncSession, coop_code: str, township: str) -> LedgerAccount:
    """The coop's subsidy account in this township (`credit_coop:{township}.{coop}:subsidy`)."""
    return await ledger.ensure_account(session, holder_kind="credit_coop", holder_ref=f"{township}.{coop_code}",
                                       purpose="subsidy",
                                       area_code=township, name=f"信用社 {coop_code} 贴息")


async def _balance(session: AsyncSession, account: LedgerAccount) -> Decimal:
    value = await session.scalar(
        select(LedgerAccount.balance).where(LedgerAccount.id == account.id).with_for_update()
    )
    return Decimal(value if value is not None else ZERO)


async def _fund(
    session: AsyncSession, *, chain: list[LedgerAccount], amount: Decimal, ref: str, run: SubsidyRun, on: Any
) -> Decimal:
    """Make chain[-1] hold `amount` more than it can spend: pull each deficit down the chain from the
    budget source (chain[0]). Returns what chain[-1] received."""
    if amount <= 0:
        return ZERO
    needed = amount
    # walk from the payer end back to the source, computing what each level must pass down
    wants = [ZERO] * len(chain)
    wants[-1] = needed
    for i in range(len(chain) - 2, 0, -1):
        have = await _balance(session, chain[i])
        wants[i] = max(wants[i + 1] - have, ZERO)
    for i in range(1, len(chain)):
        if wants[i] > 0:
            await ledger.transfer(session, source=chain[i - 1], target=chain[i], amount=wants[i],
                                  kind=f"subsidy.{run.phase}.fund", reference=f"{ref}:{chain[i].code}",
                                  effective_on=on, run_id=run.id, description=f"{run.phase} {run.quarter}")
    return wants[-1]


async def _load(session: AsyncSession, job: jobs.JobRun) -> tuple[SubsidyRun, Quarter, str, dict[str, Any]]:
    run = await session.scalar(select(SubsidyRun).where(SubsidyRun.job_key == job.key).with_for_update())
    if run is None:
        raise RuntimeError(f"no subsidy run for job {job.key}")
    q = Quarter.parse(run.quarter)
    county = county_of(run.area_code)
    params = {"township": run.area_code, "county": county, "q_start": q.start, "q_end": q.end}
    run.started_at = datetime.now(UTC)
    return run, q, county, params


async def _expected(session: AsyncSession, params: dict[str, Any]) -> list[tuple[str, Decimal]]:
    rows = (await session.execute(text(sql.EXPECTED_BY_COOP).bindparams(RATE_PARAM), params)).all()
    return [(r[0], Decimal(r[1])) for r in rows if r[1] and r[1] > 0]


def _finish(run: SubsidyRun) -> dict[str, Any]:
    run.status = rules.RunStatus.done
    run.finished_at = datetime.now(UTC)
    return {"run_id": str(run.id), "expected": str(run.total_expected), "paid": str(run.total_paid),
            "returned": str(run.total_returned), "topped_up": str(run.total_topped_up),
            "loans_paid": run.loans_paid, "loans_late": run.loans_late}


async def allocate(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    run, q, county, params = await _load(session, job)
    total = sum((a for _, a in await _expected(session, params)), ZERO)
    source, bureau, town = await _accounts(session, county, run.area_code)
    if total > 0:
        await _fund(session, chain=[source, bureau], amount=total, ref=f"subsidy.allocation:{run.id}:appropriate",
                    run=run, on=business_date())
        await ledger.transfer(session, source=bureau, target=town, amount=total, kind="subsidy.allocate",
                              reference=f"subsidy.allocation:{run.area_code}:{q}", effective_on=business_date(),
                              run_id=run.id, description=f"贴息资金划拨 {q}")
    run.total_expected = total
    return _finish(run)


async def preallocate(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    run, q, county, params = await _load(session, job)
    allocated = await session.scalar(select(SubsidyRun.status).where(
        SubsidyRun.area_code == run.area_code, SubsidyRun.quarter == run.quarter, SubsidyRun.phase == "allocation"))
    if allocated != "done":
        # Not an error: the pre-allocation waits, and the allocation's completion starts it again.
        raise jobs.NotReady(f"allocation of {run.area_code} {q} is not done yet",
                            waiting_for=job_key("allocation", run.area_code, str(q)))
    _, _, town = await _accounts(session, county, run.area_code)
    await ledger.open_accounts_from(session, sql.ACCOUNTS_AHEAD, params)  # the payees, before settlement
    total = ZERO
    for coop_code, amount in await _expected(session, params):
        coop = await _coop(session, coop_code, run.area_code)
        await ledger.transfer(session, source=town, target=coop, amount=amount, kind="subsidy.preallocate",
                              reference=_prealloc_ref(run.area_code, q, coop_code), effective_on=business_date(),
                              run_id=run.id, description=f"贴息资金预拨 {q}")
        total += amount
    run.total_expected = total
    return _finish(run)


def _prealloc_ref(township: str, q: Quarter, coop_code: str) -> str:
    return f"subsidy.preallocation:{township}:{q}:{coop_code}"


async def _advance(session: AsyncSession, township: str, q: Quarter, coop_code: str, coop: LedgerAccount) -> Decimal:
    """What the pre-allocation of `q` advanced to this coop."""
    value = await session.scalar(
        select(JournalLine.debit).join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalEntry.reference == _prealloc_ref(township, q, coop_code), JournalLine.account_id == coop.id)
    )
    return Decimal(value) if value is not None else ZERO


async def settle(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    run, q, county, params = await _load(session, job)
    paid_on = business_date()
    ids = {"run_id": run.id}
    # 1. one INSERT … SELECT computes every payout of the township's quarter (UNIQUE(run_id, loan_id), UNIQUE(loan_id))
    await session.execute(text(sql.INSERT_PAYOUTS).bindparams(RATE_PARAM), {**params, **ids, "paid_on": paid_on})
    await ledger.open_accounts_from(session, sql.TARGET_ACCOUNTS, ids)
    by_source = (await session.execute(text(sql.PAYOUTS_BY_SOURCE), ids)).all()
    source, bureau, town = await _accounts(session, county, run.area_code)
    # 2. fund each payer so no fund goes below zero: coops beyond their advance, the bureau for enterprises
    topped = ZERO
    returns: list[tuple[LedgerAccount, Decimal]] = []
    for source_code, _entry, coop_code, amount, _n in by_source:
        amount = Decimal(amount)
        if source_code == bureau.code:
            await _fund(session, chain=[source, bureau], amount=amount - await _balance(session, bureau),
                        ref=f"subsidy.settlement:{run.id}:enterprise", run=run, on=paid_on)
            continue
        coop = await _coop(session, coop_code, run.area_code)
        advance = await _advance(session, run.area_code, q, coop_code, coop)
        if amount > advance:
            topped += await _fund(session, chain=[source, bureau, town, coop], amount=amount - advance,
                                  ref=f"subsidy.settlement:{run.id}:topup:{coop_code}", run=run, on=paid_on)
        elif advance > amount:
            returns.append((coop, advance - amount))
    # coops with an advance but no payouts at all return all of it
    paying = {row[2] for row in by_source if row[0] != bureau.code}
    expected = await _expected(session, params)
    for coop_code, _ in expected:
        if coop_code not in paying:
            coop = await _coop(session, coop_code, run.area_code)
            advance = await _advance(session, run.area_code, q, coop_code, coop)
            if advance > 0:
                returns.append((coop, advance))
    # 3. the payouts' entries, then all their lines in one call (the ledger checks them and moves balances)
    await ledger.add_entries_from(session, sql.ENTRIES,
                                  {**ids, "paid_on": paid_on, "description": f"贴息兑付 {q}", "created_by": "subsidy"},
                                  area_code=county)
    await ledger.post_lines_from(session, sql.LINES, ids)
    # 4. the unused advance goes back to the township finance office
    returned = ZERO
    for coop, amount in returns:
        await ledger.transfer(session, source=coop, target=town, amount=amount, kind="subsidy.return",
                              reference=f"subsidy.settlement:{run.id}:return:{coop.holder_ref}",
                              effective_on=paid_on, run_id=run.id, description=f"贴息结余退回 {q}")
        returned += amount
    run.total_paid = sum((Decimal(r[3]) for r in by_source), ZERO)
    run.loans_paid = sum(int(r[4]) for r in by_source)
    run.loans_late = int(await session.scalar(text(sql.LATE_LOANS), params) or 0)
    run.total_returned = returned
    run.total_topped_up = topped
    run.total_expected = sum((a for _, a in expected), ZERO)
    return _finish(run)


async def plan(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    """Cron fan-out: one run (and job) per township for `phase` of `quarter`."""
    phase, quarter = job.args["phase"], Quarter.parse(job.args["quarter"])
    if phase not in PHASES:
        raise ValueError(phase)
    townships = (await session.scalars(select(Area.code).where(Area.level == "township").order_by(Area.code))).all()
    created = 0
    for code in townships:
        _, new = await ensure_run(session, township=code, quarter=quarter, phase=phase, triggered_by="cron")
        created += int(new)
    return {"townships": len(townships), "created": created}
