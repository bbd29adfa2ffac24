"""Benchmark: the repayment-rate check of every township of a synthetic province with 1,000,000 loans.

`python -m bench.assessment [--loans N]` builds its own database, seeds a province (10 counties × 20
townships × 5 villages) with N loans falling due through 2025 and about one repayment each (10% only
half repaid, some late), times `assessment.service.run_checks` over the whole province — one statement
writing 200 check rows and the snapshot of every loan behind them — and appends the result to
bench/assessment-results.md. `repayment_checks(ctx)` is the same measurement as an entry for the shared
job benchmarks (bench.jobs), run against their seeded province.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from fupin.assessment import service
from fupin.db import make_engine, make_sessionmaker, unit_of_work

ROOT = Path(__file__).resolve().parents[1]
PROVINCE = "910000000000"
YEAR = 2025

SEED_AREAS = """
INSERT INTO area (code, name, level, parent_code, population)
SELECT '910000000000', '基准省', 'province', NULL, 0
UNION ALL SELECT '910100000000', '基准市', 'city', '910000000000', 0
UNION ALL SELECT '9101' || lpad(c::text, 2, '0') || '000000', '基准县' || c, 'county', '910100000000', 0
  FROM generate_series(1, 10) c
UNION ALL SELECT '9101' || lpad(c::text, 2, '0') || (100 + t)::text || '000', '基准乡' || c || '-' || t, 'township',
                 '9101' || lpad(c::text, 2, '0') || '000000', 0
  FROM generate_series(1, 10) c, generate_series(0, 19) t
UNION ALL SELECT '9101' || lpad(c::text, 2, '0') || (100 + t)::text || (200 + v)::text, '基准村', 'village',
                 '9101' || lpad(c::text, 2, '0') || (100 + t)::text || '000', 1000
  FROM generate_series(1, 10) c, generate_series(0, 19) t, generate_series(0, 4) v
"""

SEED_LOANS = """
INSERT INTO loan (id, area_code, county, township_code, product, purpose, productive, principal, outstanding, interest_rate,
                  disbursed_on, due_on, status, coop_code, external_id)
SELECT gen_random_uuid(), v.code, left(v.code, 6), substr(v.code, 1, 9) || '000', 'household', 'livestock', true,
       CAST(10000 + (i % 50) * 100 AS NUMERIC(14,2)), CAST(0 AS NUMERIC(14,2)), CAST(0.058 AS NUMERIC(9,6)),
       DATE '2024-06-01', DATE '2025-01-01' + (i % 365), 'current', 'coop', i::text
FROM generate_series(0, :n - 1) i
JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS k FROM area WHERE level = 'village') v ON v.k = i % 1000
"""

SEED_REPAYMENTS = """
INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on)
SELECT gen_random_uuid(), l.id, l.area_code, left(l.area_code, 6),
       CASE WHEN l.external_id::int % 10 = 0 THEN round(l.principal / 2, 2) ELSE l.principal END,
       l.due_on + CASE WHEN l.external_id::int % 37 = 0 THEN 20 ELSE -(l.external_id::int % 5) END
FROM loan l WHERE l.township_code LIKE '91%'
"""


async def repayment_checks(ctx: Any) -> str:
    """Entry for bench.jobs: check every township of the seeded database in one statement."""
    async with ctx.owner_session() as session:
        result = await service.run_checks(
            session, area_code=ctx.townships[0][:2] + "0" * 10, kind="manual", period_start=date(YEAR, 1, 1),
            period_end=date(YEAR, 12, 31), as_of=date(YEAR, 12, 31), job_key=f"bench:{uuid.uuid4().hex}",
        )
        total = int(await session.scalar(text("SELECT count(*) FROM loan")) or 0)
    return f"{result['checks']:,} townships; {total:,} loans scanned, {result['loans']:,} fell due in {YEAR} (inputs reconstructible by query, no per-loan rows)"


async def main(loans: int, owner: str) -> None:
    engine = make_engine(owner, name="fupin-bench", pool_size=2)
    sm = make_sessionmaker(engine)
    t0 = time.perf_counter()
    async with unit_of_work(sm) as session:
        await session.execute(text("SET LOCAL statement_timeout = 0"))
        await session.execute(text(SEED_AREAS))
        await session.execute(text(SEED_LOANS), {"n": loans})
        await session.execute(text(SEED_REPAYMENTS))
    async with engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text("ANALYZE"))
    seed_s = time.perf_counter() - t0
    timings = []
    for attempt in range(2):
        t1 = time.perf_counter()
        async with unit_of_work(sm) as session:
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            result = await service.run_checks(
                session, area_code=PROVINCE, kind="manual", period_start=date(YEAR, 1, 1),
                period_end=date(YEAR, 12, 31), as_of=date(YEAR, 12, 31), job_key=f"bench:{attempt}",
            )
        timings.append(time.perf_counter() - t1)
    await engine.dispose()
    line = (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {loans:,} | {result['checks']:,} | {result['loans']:,} | "
        f"{seed_s:.1f} s | {timings[0]:.2f} s | {timings[1]:.2f} s |"
    )
    out = ROOT / "bench" / "assessment-results.md"
    if not out.exists():
        out.write_text(
            "# Repayment-rate check, all townships of a synthetic province (one statement)\n\n"
            "| when (UTC) | loans | checks | loan snapshots | seed | 1st check | 2nd check (snapshot table already holds the 1st) |\n"
            "|---|---|---|---|---|---|---|\n"
        )
    with out.open("a") as f:
        f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=1_000_000)
    args = parser.parse_args()
    from bench.run import scratch_database  # here: bench.run imports this module (through bench.jobs)

    with scratch_database("fupin_bench_assessment") as owner:
        asyncio.run(main(args.loans, owner))
