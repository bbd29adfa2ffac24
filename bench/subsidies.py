"""Benchmark: quarterly subsidy settlement of a synthetic province, against the same writes in one statement.

    PYTHONPATH=shared:services/api:services/worker python -m bench.subsidies --loans 100000 1000000

For each size: a fresh database, N loans over townships of 2,000 loans each, 20 townships a county (a
1M-loan province: 500 townships in 25 counties, like `fupin seed-synthetic`), ~95% repaid in 2026Q3.
Untimed preparation, through the real job runner: every township's allocation and pre-allocation (which
open the payees' accounts ahead of the quarter), and the settlement jobs requested. Then, `--repeats` times
on two fresh copies of that database (the machine is shared and noisy: each pair is measured back to
back, in alternating order, and the ratio reported is the median of the pairs'), timed:

- floor: the settlement's writes as ONE statement with no checks and no Python — every payout row, one
  journal entry per township and payer, every journal line, every balance moved — with every payee's
  account in place (those the pre-allocation did not open are opened untimed first), in a transaction
  rolled back and vacuumed away; the best of two;
- settlement: the real `subsidy.settlement` jobs through `fupin_worker.runner.execute` (claim, handler,
  commit with `done`): one job per county where the code plans it so (`ensure_county_settlement`), else one
  per township as before. The ledger is checked afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fupin.calendar import Quarter
from fupin.db import make_engine, make_sessionmaker
from fupin.ledger import service as ledger
from fupin.migrate import upgrade
from fupin.settings import get_settings
from fupin.subsidies import jobs as subsidy_jobs  # noqa: F401  (handlers)
from fupin.subsidies import service
from fupin.subsidies.models import SubsidyPayout
from fupin_worker import runner

ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PER_TOWNSHIP = 2000
TOWNSHIPS_PER_COUNTY = 20
QUARTER = Quarter.parse("2026Q3")
PROFILE = False
KEEP = False

# township k = g / 2000, county c = k / 20: codes 52 CC CC TTT VVV
GENERATE = """
INSERT INTO household (id, area_code, county, household_no, head_name, address, category, main_cause, secondary_causes,
                       income_per_capita, family_planning, veteran, status)
SELECT gen_random_uuid(), t.code || lpad((g % 10 + 200)::text, 3, '0'), left(t.code, 6), 'B' || g, '户' || g, '', 'general',
       'lack_capital', '{}', 3000, false, false, 'registered'
FROM generate_series(0, :n - 1) g
CROSS JOIN LATERAL (SELECT g / :per AS k) k
CROSS JOIN LATERAL (SELECT '52' || lpad((1 + k.k / :tpc / 90)::text, 2, '0') || lpad((1 + k.k / :tpc % 90)::text, 2, '0')
                    || lpad((100 + k.k % :tpc)::text, 3, '0') AS code) t;
"""

LOANS = """
INSERT INTO loan (id, area_code, county, township_code, household_id, product, purpose, productive, principal, outstanding,
                  interest_rate, disbursed_on, due_on, repaid_on, status, coop_code)
SELECT gen_random_uuid(), h.area_code, left(h.area_code, 6), substr(h.area_code, 1, 9) || '000', h.id, 'household', 'livestock',
       random() < 0.9, p, CASE WHEN paid THEN 0 ELSE p END, 0.0435, d, d + term,
       CASE WHEN paid THEN r END,
       CASE WHEN NOT paid THEN 'current' WHEN r <= d + term THEN 'repaid_on_time' ELSE 'repaid_late' END, 'C1'
FROM (
    SELECT h.*, round((1000 + random() * 49000)::numeric, 2) AS p, date '2025-10-01' + (random() * 270)::int AS d,
           30 + (random() * 335)::int AS term, date '2026-07-01' + (random() * 91)::int AS r, random() < 0.95 AS paid
    FROM household h
) h;
INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on)
SELECT gen_random_uuid(), id, area_code, left(area_code, 6), principal, repaid_on FROM loan WHERE repaid_on IS NOT NULL;
"""

# The floor's payouts: the settlement's own arithmetic (repayments by index, the policy in force, half-up
# to the fen) for every township of the province at once.
_PAYOUTS = """
SELECT r.id AS run_id, r.area_code AS township, l.id AS loan_id, l.area_code, l.household_id, l.enterprise_name,
       l.coop_code, l.principal, l.repaid_on - l.disbursed_on AS days, rp.pd,
       COALESCE(pol.rate, CAST(0.0258 AS numeric(9,6))) AS rate,
       round(rp.pd * COALESCE(pol.rate, CAST(0.0258 AS numeric(9,6))) / 365, 2) AS amount,
       CASE WHEN l.household_id IS NULL THEN 'finance_bureau:' || left(r.area_code, 6) || '000000' || ':' || 'subsidy'
            ELSE 'credit_coop:' || r.area_code || '.' || l.coop_code || ':' || 'subsidy' END AS source_code,
       CASE WHEN l.household_id IS NULL THEN 'enterprise:' || l.id || ':' || 'subsidy'
            ELSE 'household:' || l.household_id || ':' || 'subsidy' END AS target_code
FROM subsidy_run r
JOIN loan l ON l.township_code = r.area_code
CROSS JOIN LATERAL (SELECT sum(lr.amount * GREATEST(LEAST(lr.paid_on, l.due_on) - l.disbursed_on, 0)) AS pd
                    FROM loan_repayment lr WHERE lr.loan_id = l.id) rp
LEFT JOIN LATERAL (SELECT p.rate, p.productive_only FROM subsidy_policy p
                   WHERE p.area_code = left(r.area_code, 6) || '000000' AND p.effective_from <= l.disbursed_on
                   ORDER BY p.effective_from DESC LIMIT 1) pol ON true
WHERE r.quarter = :quarter AND r.phase = 'settlement'
  AND l.repaid_on BETWEEN :q_start AND :q_end AND l.repaid_on <= l.due_on AND l.outstanding = 0
  AND (l.productive OR NOT COALESCE(pol.productive_only, true))
"""

FLOOR_ACCOUNTS = f"""
INSERT INTO ledger_account (id, code, holder_kind, holder_ref, purpose, name, area_code, allow_negative, balance)
SELECT DISTINCT ON (c.target_code) gen_random_uuid(), c.target_code, split_part(c.target_code, ':', 1),
       split_part(c.target_code, ':', 2), 'subsidy', c.target_code, c.area_code, false, 0
FROM ({_PAYOUTS}) c WHERE c.amount > 0
ON CONFLICT (code) DO NOTHING
"""

FLOOR = f"""
WITH c AS MATERIALIZED ({_PAYOUTS}),
p AS (
    INSERT INTO subsidy_payout (run_id, loan_id, area_code, county, household_id, enterprise_name, coop_code, principal,
                                days, principal_days, rate, amount, paid_on, source_code, target_code, entry_id)
    SELECT run_id, loan_id, area_code, left(area_code, 6), household_id, enterprise_name, coop_code, principal, days, pd,
           rate, amount, :paid_on, source_code, target_code, CAST(md5(CAST(run_id AS text) || ':' || source_code) AS uuid)
    FROM c WHERE amount > 0
    RETURNING run_id, entry_id, source_code, target_code, amount, county
), e AS (
    INSERT INTO journal_entry (id, kind, reference, effective_on, description, run_id, created_by, area_code)
    SELECT entry_id, 'subsidy.settle', 'floor:' || entry_id, :paid_on, '', run_id, 'floor', min(county) || '000000'
    FROM p GROUP BY entry_id, run_id
    RETURNING id
), l AS (
    INSERT INTO journal_line (entry_id, account_id, debit, credit, area_code)
    SELECT p.entry_id, a.id, p.amount, 0, a.area_code FROM p JOIN ledger_account a ON a.code = p.target_code
    UNION ALL
    SELECT p.entry_id, a.id, 0, sum(p.amount), a.area_code FROM p JOIN ledger_account a ON a.code = p.source_code
    GROUP BY p.entry_id, a.id, a.area_code
    RETURNING account_id, debit, credit
)
UPDATE ledger_account a SET balance = a.balance + s.delta
FROM (SELECT account_id, sum(debit - credit) AS delta FROM l GROUP BY account_id) s
WHERE a.id = s.account_id
"""


async def _run_jobs(sm: async_sessionmaker[AsyncSession], keys: list[str]) -> None:
    settings = get_settings()
    for key in keys:
        outcome = await runner.execute(sm, settings, key)
        if outcome != "done":
            raise RuntimeError(f"{key}: {outcome}")


async def _request(sm: async_sessionmaker[AsyncSession], townships: list[str], phase: str) -> list[str]:
    async with sm() as s, s.begin():
        runs = [(await service.ensure_run(s, township=t, quarter=QUARTER, phase=phase, triggered_by="bench"))[0]
                for t in townships]
        return [r.job_key for r in runs]


async def _request_settlement(sm: async_sessionmaker[AsyncSession], townships: list[str]) -> tuple[list[str], str]:
    """One job per county where the code has county settlement, else one per township (the code before it)."""
    county_wide = getattr(service, "ensure_county_settlement", None)
    if county_wide is None:
        return await _request(sm, townships, "settlement"), "one job per township"
    counties: dict[str, list[str]] = {}
    for t in townships:
        counties.setdefault(t[:6] + "000000", []).append(t)
    async with sm() as s, s.begin():
        for county, towns in counties.items():
            await county_wide(s, county=county, townships=towns, quarter=QUARTER, triggered_by="bench")
    return [service.job_key("settlement", c, str(QUARTER)) for c in counties], "one job per county"


async def _floor(sm: async_sessionmaker[AsyncSession]) -> tuple[float, int]:
    """The settlement's writes in one statement, in a transaction rolled back."""
    params = {"quarter": str(QUARTER), "q_start": QUARTER.start, "q_end": QUARTER.end, "paid_on": QUARTER.next().start}
    async with sm() as s:
        # the funds' non-negative check is the settlement's business (it tops coops up first); the floor
        # only writes, so it lifts the check inside its own transaction, which is rolled back
        await s.execute(text("ALTER TABLE ledger_account DROP CONSTRAINT ck_ledger_account_fund_not_negative"))
        # payees whose account the pre-allocation did not open (none where accounts are opened ahead):
        # opened untimed, so the floor is the settlement's own writes with every account in place
        await s.execute(text(FLOOR_ACCOUNTS), params)
        t0 = time.perf_counter()
        await s.execute(text(FLOOR), params)
        took = time.perf_counter() - t0
        rows = int(await s.scalar(select(func.count()).select_from(SubsidyPayout)) or 0)
        await s.rollback()
    return took, rows


async def _settle(sm: async_sessionmaker[AsyncSession], keys: list[str]) -> tuple[float, int, dict[str, object]]:
    """The real jobs; (seconds, statements sent, what was paid and the ledger check)."""
    engine = sm.kw["bind"]
    timings: dict[str, float] = {}
    count = [0]

    def before(conn: Any, *_: Any) -> None:
        conn.info["t"] = time.perf_counter()
        count[0] += 1

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        k = " ".join(statement.split())[:90]
        timings[k] = timings.get(k, 0.0) + time.perf_counter() - conn.info["t"]

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    t0 = time.perf_counter()
    await _run_jobs(sm, keys)
    took = time.perf_counter() - t0
    event.remove(engine.sync_engine, "before_cursor_execute", before)
    event.remove(engine.sync_engine, "after_cursor_execute", after)
    if PROFILE:
        for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:25]:
            print(f"{v:8.2f}s  {k}")
    async with sm() as s:
        payouts = await s.scalar(select(func.count()).select_from(SubsidyPayout))
        total = await s.scalar(select(func.sum(SubsidyPayout.amount)))
        check = await ledger.check(s)
    return took, count[0], {"payouts": payouts, "total": Decimal(total or 0), "ledger_ok": check.ok}


async def _prepare(url: str, n: int) -> tuple[list[str], str, dict[str, float]]:
    """Data, allocation and pre-allocation, and the settlement jobs requested (not run)."""
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, name="bench", pool_size=2)
    sm = make_sessionmaker(engine)
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        await s.execute(text(GENERATE).bindparams(n=n, per=PER_TOWNSHIP, tpc=TOWNSHIPS_PER_COUNTY))
        for stmt in LOANS.split(";"):
            if stmt.strip():
                await s.execute(text(stmt))
    async with sm() as s:
        await s.execute(text("ANALYZE"))
        await s.commit()
        townships = list((await s.scalars(text("SELECT DISTINCT township_code FROM loan ORDER BY 1"))).all())
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    await _run_jobs(sm, await _request(sm, townships, "allocation"))
    await _run_jobs(sm, await _request(sm, townships, "preallocation"))
    prep = time.perf_counter() - t0
    keys, mode = await _request_settlement(sm, townships)
    async with sm.kw["bind"].connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return keys, mode, {"townships": len(townships), "counties": len({t[:6] for t in townships}),
                        "generate_s": round(gen, 1), "alloc_prealloc_s": round(prep, 1)}


async def run(n: int, repeats: int) -> dict[str, object]:
    """Prepare once; then `repeats` times, on two fresh copies of the prepared database (CREATE DATABASE …
    TEMPLATE), the floor on one and the settlement on the other, their order alternating."""
    name = f"fupin_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN, isolation_level="AUTOCOMMIT")
    base = ADMIN.rsplit("/", 1)[0] + "/"
    async with admin.connect() as c:
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    copies: list[str] = []
    try:
        keys, mode, info = await _prepare(base + name, n)
        floors: list[float] = []
        settles: list[float] = []
        result: dict[str, object] = {}
        statements = floor_rows = 0
        for i in range(repeats):
            pair = [f"{name}_f{i}", f"{name}_s{i}"]
            for copy in pair:
                async with admin.connect() as c:
                    await c.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
                copies.append(copy)
            for copy in pair if i % 2 == 0 else pair[::-1]:
                engine = make_engine(base + copy, name="bench", pool_size=2)
                sm = make_sessionmaker(engine)
                if copy.endswith(f"_f{i}"):
                    took, floor_rows = await _floor(sm)
                    floors.append(took)
                else:
                    took, statements, result = await _settle(sm, keys)
                    settles.append(took)
                await engine.dispose()
                async with admin.connect() as c:
                    await c.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        ratios = sorted(s / f for s, f in zip(settles, floors, strict=True))
        return {"loans": n, **info, "mode": mode, "jobs": len(keys), "statements": statements, **result,
                "floor_payouts": floor_rows, "floor_s": [round(f, 2) for f in floors],
                "settle_s": [round(s, 2) for s in settles], "ratio_median": round(statistics.median(ratios), 2),
                "ratios": [round(r, 2) for r in ratios]}
    finally:
        async with admin.connect() as c:
            for copy in copies:
                await c.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
            if not KEEP:
                await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                print("kept database", name)
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, nargs="+", default=[100_000])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the prepared database for EXPLAIN")
    parser.add_argument("--repeats", type=int, default=3, help="floor/settlement pairs per size")
    args = parser.parse_args()
    global PROFILE, KEEP
    PROFILE, KEEP = args.profile, args.keep
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    for n in args.loans:
        print(asyncio.run(run(n, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
