"""Benchmark: quarterly subsidy settlement of a synthetic province.

    PYTHONPATH=shared:services/api:services/worker python -m bench.subsidies --loans 100000 1000000

For each size: a fresh database, N loans spread over townships of 2,000 loans each (like a 500-township,
1M-loan province), ~2/3 repaid on time in 2026Q3; then every township's settlement run is executed
through the real job handler, one transaction per township, as the worker does. Reports the time of
the settlement phase only (data generation excluded) and checks the ledger afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from fupin import jobs
from fupin.db import make_engine, make_sessionmaker
from fupin.ledger import service as ledger
from fupin.subsidies import jobs as subsidy_jobs  # noqa: F401  (handlers)
from fupin.subsidies.models import SubsidyPayout, SubsidyRun
from fupin_worker import kinds

PER_TOWNSHIP = 2000
PROFILE = False
KEEP = False

GENERATE = """
INSERT INTO household (id, area_code, county, household_no, head_name, address, category, main_cause, secondary_causes,
                       income_per_capita, family_planning, veteran, status)
SELECT gen_random_uuid(), t.code || lpad((g % 10 + 200)::text, 3, '0'), left(t.code, 6), 'B' || g, '户' || g, '', 'general',
       'lack_capital', '{}', 3000, false, false, 'registered'
FROM generate_series(0, :n - 1) g
CROSS JOIN LATERAL (SELECT '52' || lpad((1 + g / :per % 99)::text, 2, '0') || lpad((1 + g / :per / 99 % 99)::text, 2, '0')
                    || lpad((100 + g / :per / 9801)::text, 3, '0') AS code) t;
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


async def run(n: int, url: str) -> dict[str, object]:
    engine = make_engine(url, name="bench", pool_size=2)
    timings: dict[str, float] = {}
    if PROFILE:
        from sqlalchemy import event

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _before(conn: Any, *_: Any) -> None:
            conn.info["t"] = time.perf_counter()

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            k = " ".join(statement.split())[:90]
            timings[k] = timings.get(k, 0.0) + time.perf_counter() - conn.info["t"]
    sm = make_sessionmaker(engine)
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        await s.execute(text(GENERATE).bindparams(n=n, per=PER_TOWNSHIP))
        for stmt in LOANS.split(";"):
            if stmt.strip():
                await s.execute(text(stmt))
    async with sm() as s:
        await s.execute(text("ANALYZE"))
        await s.commit()
        townships = (await s.scalars(text("SELECT DISTINCT township_code FROM loan ORDER BY 1"))).all()
    gen = time.perf_counter() - t0
    keys = []
    async with sm() as s, s.begin():
        for t in townships:
            run_row = SubsidyRun(id=uuid.uuid4(), area_code=t, quarter="2026Q3", phase="settlement",
                                 job_key=f"subsidy.settlement:{t}:2026Q3", status="pending", triggered_by="bench")
            s.add(run_row)
            await jobs.request_job(s, kind="subsidy.settlement", key=run_row.job_key, area_code=t, args={})
            keys.append(run_row.job_key)
    t1 = time.perf_counter()
    for key in keys:
        async with sm() as s, s.begin():
            job = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key))
            assert job is not None
            await kinds.HANDLERS["subsidy.settlement"](s, job)
    settle = time.perf_counter() - t1
    for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{v:8.2f}s  {k}")
    async with sm() as s:
        payouts = await s.scalar(select(func.count()).select_from(SubsidyPayout))
        total = await s.scalar(select(func.sum(SubsidyPayout.amount)))
        check = await ledger.check(s)
    await engine.dispose()
    return {"loans": n, "townships": len(townships), "payouts": payouts, "total": Decimal(total or 0),
            "generate_s": round(gen, 1), "settle_s": round(settle, 2), "ledger_ok": check.ok}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, nargs="+", default=[100_000])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database for EXPLAIN")
    args = parser.parse_args()
    global PROFILE, KEEP
    PROFILE, KEEP = args.profile, args.keep
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    from bench.run import scratch_database

    for n in args.loans:
        with scratch_database("fupin_bench_subsidies", keep=KEEP) as url:
            print(asyncio.run(run(n, url)))
            if KEEP:
                print("kept database", url)


if __name__ == "__main__":
    main()
