"""The quarterly cycle as keyed jobs (`subsidy.{phase}:{area}:{quarter}`), run by the worker.

Fund flow, each step a balanced posting with a reference unique forever:
  allocation     county appropriation → 县财政局 → 乡镇财政所: the quarter's expected subsidy
  preallocation  乡镇财政所 → each 乡镇信用社: expected subsidy of its loans falling due in the quarter
  settlement     信用社 → 农户 the exact entitlement of each loan repaid on time in the quarter (set-based);
                 enterprise loans 县财政局 → 企业; shortfall topped up before, surplus returned after.
Allocation and pre-allocation run per township. A settlement job settles every run keyed to it: the
planned quarter has one job per county (`subsidy.settlement:{county}:{quarter}`) whose township runs are
settled together in a fixed number of statements; a township requested by hand has a job of its own.
The runner commits the effects with the job's `done`, so a crash leaves nothing and a rerun pays once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import groupby
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
from fupin.subsidies.service import PHASES, ensure_county_settlement, ensure_run, job_key

ZERO = Decimal("0.00")
# Job kinds, each spelled once: the worker's schedule and the API import these.
ALLOCATION, PREALLOCATION, SETTLEMENT = "subsidy.allocation", "subsidy.preallocation", "subsidy.settlement"
PLAN = "subsidy.plan"
RATE_PARAM = bindparam("default_rate", value=rules.DEFAULT_RATE, type_=Numeric(9, 6))


def _source(county: str) -> ledger.AccountSpec:
    return ledger.AccountSpec("source", county, "subsidy", county, "县级贴息预算", allow_negative=True)


def _bureau(county: str) -> ledger.AccountSpec:
    return ledger.AccountSpec("finance_bureau", county, "subsidy", county, "县财政局贴息专户")


def _town(township: str) -> ledger.AccountSpec:
    return ledger.AccountSpec("township_finance", township, "subsidy", township, "乡镇财政所贴息专户")


def _coop(township: str, coop_code: str) -> ledger.AccountSpec:
    """The coop's subsidy account in this township (`credit_coop:{township}.{coop}:subsidy`)."""
    return ledger.AccountSpec("credit_coop", f"{township}.{coop_code}", "subsidy", township, f"信用社 {coop_code} 贴息")


async def _accounts(session: AsyncSession, county: str, township: str) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    specs = [_source(county), _bureau(county), _town(township)]
    found = await ledger.ensure_accounts(session, specs)
    source, bureau, town = (found[sp.code] for sp in specs)
    return source, bureau, town


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


def _params(runs: Sequence[SubsidyRun]) -> tuple[Quarter, str, dict[str, Any]]:
    q = Quarter.parse(runs[0].quarter)
    county = county_of(runs[0].area_code)
    if any(r.quarter != runs[0].quarter or county_of(r.area_code) != county for r in runs):
        raise RuntimeError("one job settles runs of one county and quarter")
    return q, county, {"run_ids": [r.id for r in runs], "county": county, "q_start": q.start, "q_end": q.end}


async def _load(session: AsyncSession, job: jobs.JobRun) -> tuple[SubsidyRun, Quarter, str, dict[str, Any]]:
    """The one run of an allocation or pre-allocation job."""
    run = await session.scalar(select(SubsidyRun).where(SubsidyRun.job_key == job.key).with_for_update())
    if run is None:
        raise RuntimeError(f"no subsidy run for job {job.key}")
    q, county, params = _params([run])
    run.started_at = datetime.now(UTC)
    return run, q, county, {**params, "township": run.area_code}


async def _expected(session: AsyncSession, params: dict[str, Any]) -> dict[uuid.UUID, list[tuple[str, Decimal]]]:
    """Expected subsidy per run and coop (coops with nothing expected left out)."""
    rows = (await session.execute(text(sql.EXPECTED_BY_COOP).bindparams(RATE_PARAM), params)).all()
    out: dict[uuid.UUID, list[tuple[str, Decimal]]] = defaultdict(list)
    for run_id, coop, amount in rows:
        if amount and amount > 0:
            out[run_id].append((coop, Decimal(amount)))
    return out


def _finish(run: SubsidyRun) -> dict[str, Any]:
    run.status = rules.RunStatus.done
    run.finished_at = datetime.now(UTC)
    return _result(run)


def _result(run: SubsidyRun) -> dict[str, Any]:
    return {"run_id": str(run.id), "expected": str(run.total_expected), "paid": str(run.total_paid),
            "returned": str(run.total_returned), "topped_up": str(run.total_topped_up),
            "loans_paid": run.loans_paid, "loans_late": run.loans_late}


async def allocate(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    run, q, county, params = await _load(session, job)
    total = sum((a for _, a in (await _expected(session, params))[run.id]), ZERO)
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
    run, q, _county, params = await _load(session, job)
    allocated = await session.scalar(select(SubsidyRun.status).where(
        SubsidyRun.area_code == run.area_code, SubsidyRun.quarter == run.quarter, SubsidyRun.phase == "allocation"))
    if allocated != "done":
        # Not an error: the pre-allocation waits, and the allocation's completion starts it again.
        raise jobs.NotReady(f"allocation of {run.area_code} {q} is not done yet",
                            waiting_for=job_key("allocation", run.area_code, str(q)))
    expected = (await _expected(session, params))[run.id]
    await ledger.open_accounts_from(session, sql.ACCOUNTS_AHEAD, params)  # the payees, before settlement
    specs = [_town(run.area_code)] + [_coop(run.area_code, c) for c, _ in expected]
    accounts = await ledger.ensure_accounts(session, specs)
    town = accounts[specs[0].code]
    postings = [
        ledger.Posting(kind="subsidy.preallocate", reference=_prealloc_ref(run.area_code, q, coop_code),
                       effective_on=business_date(), run_id=run.id, description=f"贴息资金预拨 {q}",
                       lines=[ledger.Line(accounts[_coop(run.area_code, coop_code).code].id, debit=amount),
                              ledger.Line(town.id, credit=amount)])
        for coop_code, amount in expected
    ]
    await ledger.post_many(session, postings)
    run.total_expected = sum((a for _, a in expected), ZERO)
    return _finish(run)


def _prealloc_ref(township: str, q: Quarter, coop_code: str) -> str:
    return f"subsidy.preallocation:{township}:{q}:{coop_code}"


async def _advances(
    session: AsyncSession, runs: Sequence[SubsidyRun], q: Quarter, coops: dict[uuid.UUID, list[str]],
    accounts: dict[str, LedgerAccount],
) -> dict[tuple[uuid.UUID, str], Decimal]:
    """What the pre-allocation of `q` advanced to each (run, coop): the coop's line of that entry."""
    wanted = {
        _prealloc_ref(r.area_code, q, c): (r.id, c, accounts[_coop(r.area_code, c).code].id)
        for r in runs for c in coops[r.id]
    }
    if not wanted:
        return {}
    rows = (await session.execute(
        select(JournalEntry.reference, JournalLine.account_id, JournalLine.debit)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalEntry.reference.in_(list(wanted)))
    )).all()
    return {(wanted[ref][0], wanted[ref][1]): Decimal(debit) for ref, account_id, debit in rows
            if account_id == wanted[ref][2]}


async def settle(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    """Settle every run keyed to this job that is not done yet: one township's, or a county's."""
    runs = list((await session.scalars(
        select(SubsidyRun).where(SubsidyRun.job_key == job.key, SubsidyRun.phase == "settlement")
        .order_by(SubsidyRun.area_code).with_for_update()
    )).all())
    if not runs:
        raise RuntimeError(f"no subsidy run for job {job.key}")
    todo = [r for r in runs if r.status != "done"]
    settled = await settle_runs(session, todo, key=job.key) if todo else {}
    results = [settled.get(r.id) or _result(r) for r in runs]
    if len(runs) == 1:
        return results[0]
    money = {k: str(sum((Decimal(r[k]) for r in results), ZERO)) for k in ("expected", "paid", "returned", "topped_up")}
    return {"townships": len(runs), "settled": len(todo), **money,
            "loans_paid": sum(int(r["loans_paid"]) for r in results),
            "loans_late": sum(int(r["loans_late"]) for r in results)}


async def settle_runs(
    session: AsyncSession, runs: Sequence[SubsidyRun], *, key: str
) -> dict[uuid.UUID, dict[str, Any]]:
    """Settle `runs` (townships of one county, one quarter) together: each statement covers all of them.

    1. one INSERT … SELECT computes every payout (UNIQUE(loan_id): a loan is paid once, whatever the run);
    2. the payers are funded so no fund goes below zero — each coop's shortfall against its advance comes
       down the chain source → 县财政局 → 乡镇财政所 → 信用社, the bureau's enterprise payments from the
       source; an unused advance goes back to the township — all as one `post_many`;
    3. the payouts' entries (one per run and payer) and all their lines in one call each;
    4. each run's totals, from the figures above, in one UPDATE (returned too, as each run's job result).
    The runs' ORM objects are not refreshed: the caller reads the returned totals."""
    started, paid_on = datetime.now(UTC), business_date()
    q, county, params = _params(runs)
    ids = {"run_ids": params["run_ids"]}
    await session.execute(text(sql.INSERT_PAYOUTS).bindparams(RATE_PARAM), {**params, "paid_on": paid_on})
    await ledger.open_accounts_from(session, sql.TARGET_ACCOUNTS, ids)  # payees not opened ahead
    by_source = (await session.execute(text(sql.PAYOUTS_BY_SOURCE), ids)).all()
    expected = await _expected(session, params)
    late = {run_id: int(n) for run_id, n in (await session.execute(text(sql.LATE_LOANS), params)).all()}
    bureau_code = _bureau(county).code
    paid: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)  # run → coop → paid by the coop
    enterprise: dict[uuid.UUID, Decimal] = defaultdict(lambda: ZERO)  # run → paid by the bureau
    for run_id, rows in groupby(by_source, key=lambda r: r[0]):
        for _, source_code, coop_code, amount, _n in rows:
            if source_code == bureau_code:
                enterprise[run_id] += Decimal(amount)
            else:
                paid[run_id][coop_code] = Decimal(amount)
    coops = {r.id: sorted(set(paid[r.id]) | {c for c, _ in expected[r.id]}) for r in runs}
    specs = [_source(county), _bureau(county)] + [_town(r.area_code) for r in runs] + [
        _coop(r.area_code, c) for r in runs for c in coops[r.id]]
    accounts = await ledger.ensure_accounts(session, specs, lock=True)  # balances read, then posted from
    advances = await _advances(session, runs, q, coops, accounts)
    source, bureau = accounts[specs[0].code], accounts[specs[1].code]

    def move(src: LedgerAccount, dst: LedgerAccount, amount: Decimal, kind: str, ref: str,
             run_id: uuid.UUID | None, what: str) -> ledger.Posting:
        return ledger.Posting(kind=kind, reference=ref, effective_on=paid_on, run_id=run_id, description=f"{what} {q}",
                              lines=[ledger.Line(dst.id, debit=amount), ledger.Line(src.id, credit=amount)])

    fund: list[ledger.Posting] = []
    totals: dict[uuid.UUID, dict[str, Any]] = {}
    bureau_needs = ZERO
    for run in runs:
        town = accounts[_town(run.area_code).code]
        topped = returned = ZERO
        for coop_code in coops[run.id]:
            coop = accounts[_coop(run.area_code, coop_code).code]
            spent, advance = paid[run.id].get(coop_code, ZERO), advances.get((run.id, coop_code), ZERO)
            if spent > advance:
                fund.append(move(town, coop, spent - advance, "subsidy.settlement.fund",
                                 f"subsidy.settlement:{run.id}:topup:{coop_code}:{coop.code}", run.id, "settlement"))
                topped += spent - advance
            elif advance > spent:
                fund.append(move(coop, town, advance - spent, "subsidy.return",
                                 f"subsidy.settlement:{run.id}:return:{coop.holder_ref}", run.id, "贴息结余退回"))
                returned += advance - spent
        # the township passes down what it holds before asking the bureau (returns arrive after)
        pull = max(topped - Decimal(town.balance), ZERO)
        if pull > 0:
            fund.append(move(bureau, town, pull, "subsidy.settlement.fund",
                             f"subsidy.settlement:{run.id}:topup:{town.code}", run.id, "settlement"))
        bureau_needs += pull + enterprise[run.id]
        totals[run.id] = {
            "run_id": str(run.id), "expected": sum((a for _, a in expected[run.id]), ZERO),
            "paid": sum(paid[run.id].values(), ZERO) + enterprise[run.id], "returned": returned, "topped_up": topped,
            "loans_paid": sum(int(r[4]) for r in by_source if r[0] == run.id), "loans_late": late.get(run.id, 0),
        }
    appropriate = max(bureau_needs - Decimal(bureau.balance), ZERO)
    if appropriate > 0:
        fund.append(move(source, bureau, appropriate, "subsidy.settlement.fund", f"{key}:appropriate:{bureau.code}",
                         runs[0].id if len(runs) == 1 else None, "settlement"))
    await ledger.post_many(session, fund)
    await ledger.add_entries_from(session, sql.ENTRIES,
                                  {**ids, "paid_on": paid_on, "description": f"贴息兑付 {q}", "created_by": "subsidy"},
                                  area_code=county)
    await ledger.post_lines_from(session, sql.LINES, ids)
    # every run's totals in one statement, whatever the number of townships
    t = list(totals.values())
    await session.execute(text(sql.FINISH_RUNS), {
        "ids": list(totals), "expected": [r["expected"] for r in t], "paid": [r["paid"] for r in t],
        "returned": [r["returned"] for r in t], "topped": [r["topped_up"] for r in t],
        "loans_paid": [r["loans_paid"] for r in t], "loans_late": [r["loans_late"] for r in t], "started": started,
    })
    return {run_id: {k: str(v) if isinstance(v, Decimal) else v for k, v in r.items()} for run_id, r in totals.items()}


async def plan(session: AsyncSession, job: jobs.JobRun) -> dict[str, Any]:
    """Cron fan-out for `phase` of `quarter`: one run per township; allocation and pre-allocation one job
    each, settlement one job per county for all its townships."""
    phase, quarter = job.args["phase"], Quarter.parse(job.args["quarter"])
    if phase not in PHASES:
        raise ValueError(phase)
    townships = (await session.scalars(select(Area.code).where(Area.level == "township").order_by(Area.code))).all()
    created = 0
    if phase == "settlement":
        for county, towns in groupby(townships, key=county_of):
            created += await ensure_county_settlement(session, county=county, townships=list(towns), quarter=quarter,
                                                      triggered_by="cron")
        return {"townships": len(townships), "created": created}
    for code in townships:
        _, new = await ensure_run(session, township=code, quarter=quarter, phase=phase, triggered_by="cron")
        created += int(new)
    return {"townships": len(townships), "created": created}


