"""Screening benchmark: a 500k-row medical-insurance file for one county of the synthetic province,
uploaded through `fupin.monitoring.screening.upload` (parse and check every row, COPY, the set-based
matching, warnings and one result row per file row), against a floor measured in the same run on the
same rows: COPY into a temporary table and one INSERT … SELECT writing the result rows joined to the
registry by ID number (rolled back, so it leaves nothing behind).

The file mixes the county's registry members (about a tenth of the rows, amounts around the expense
rule) with valid ID numbers of people the registry does not know, as a department's file would.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from fupin.auth.principal import SYSTEM
from fupin.db import make_sessionmaker
from fupin.monitoring import screening
from fupin.monitoring.rules import ScreeningSource
from fupin.seeding import idcard

if TYPE_CHECKING:
    from bench.run import BenchContext

RECEIVED = date(2026, 9, 24)  # a day the holiday calendar knows, so the decision deadline is computable
EVENT = date(2026, 9, 1)


@dataclass
class ScreeningFile:
    county: str
    content: bytes
    rows: int
    members: int
    parsed: list[tuple[object, ...]]
    parse_seconds: float


_FILES: dict[int, ScreeningFile] = {}


async def _build(ctx: BenchContext) -> ScreeningFile:
    county = ctx.townships[0][:6] + "000000"
    async with ctx.owner_session() as session:
        members = list(await session.scalars(text(
            "SELECT id_number FROM household_member WHERE active AND area_code >= :low AND area_code < :high "
            "ORDER BY id_number LIMIT :n"), {"low": county[:6], "high": county[:6] + ":", "n": ctx.screening_rows // 10}))
    lines = ["身份证号,姓名,金额,日期"]
    lines += [f"{n},某某,{1000 + (k * 7919) % 30000}.{k % 100:02d},{EVENT}" for k, n in enumerate(members)]
    k = 0
    while len(lines) - 1 < ctx.screening_rows:
        # Region 110101 and birth dates from 1940: never one of the synthetic province's (prefectures 90-99).
        number = idcard.make_id("110101", date.fromordinal(date(1940, 1, 1).toordinal() + k // 999), 1 + k % 999)
        lines.append(f"{number},外县人员,{100 + k % 5000}.00,{EVENT}")
        k += 1
    content = ("\n".join(lines) + "\n").encode()
    t0 = time.perf_counter()
    parsed = screening.parse(content, ScreeningSource.medical, today=date.today())
    return ScreeningFile(county, content, len(lines) - 1, len(members), list(parsed.rows), time.perf_counter() - t0)


async def build_file(ctx: BenchContext) -> str:
    """Untimed preparation: the CSV, and its parse alone (the Python part of the upload), for the report."""
    f = _FILES[id(ctx)] = await _build(ctx)
    return (f"county {f.county}: {f.rows:,} rows ({f.members:,} registry members), {len(f.content) // 1024:,} KiB "
            f"CSV; parsing and checking every row alone {f.parse_seconds:.2f} s")


FLOOR_SQL = """
INSERT INTO screening_row (screening_id, row_no, area_code, county, id_masked, name, amount, event_on, outcome,
  household_id)
SELECT CAST(:sid AS uuid), s.row_no, COALESCE(m.area_code, CAST(:county AS varchar)), left(COALESCE(m.area_code, CAST(:county AS varchar)), 6), s.id_masked,
       CASE WHEN m.id IS NULL THEN NULL ELSE s.name END, s.amount, s.event_on,
       CASE WHEN m.id IS NULL THEN 'unmatched' ELSE 'below_threshold' END, m.household_id
FROM bench_stage s
LEFT JOIN household_member m ON m.id_number = s.id_number AND m.active
     AND m.area_code >= CAST(:low AS varchar) AND m.area_code < CAST(:high AS varchar)
ORDER BY s.row_no
"""


async def floor(ctx: BenchContext) -> str:
    """COPY the parsed rows and one INSERT … SELECT, then roll back."""
    f = _FILES[id(ctx)]
    session = make_sessionmaker(ctx.engine)()
    await session.begin()
    t0 = time.perf_counter()
    await session.execute(text("CREATE TEMP TABLE bench_stage (row_no integer, id_number text, id_masked text, "
                               "name text, amount numeric(14,2), event_on date) ON COMMIT DROP"))
    raw = await (await session.connection()).get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "bench_stage", records=f.parsed, columns=["row_no", "id_number", "id_masked", "name", "amount", "event_on"])
    copied = time.perf_counter() - t0
    result = await session.execute(text(FLOOR_SQL), {"sid": uuid.uuid4(), "county": f.county, "low": f.county[:6],
                                                     "high": f.county[:6] + ":"})
    total = time.perf_counter() - t0
    await session.rollback()
    await session.close()
    ctx.screening_floor = total
    rows = int(result.rowcount)  # type: ignore[attr-defined]
    return f"{rows:,} result rows (COPY {copied:.2f} s + INSERT … SELECT {total - copied:.2f} s), rolled back"


async def upload(ctx: BenchContext) -> str:
    """The real upload in one transaction, as the API route runs it."""
    f = _FILES.pop(id(ctx))
    t0 = time.perf_counter()
    async with ctx.owner_session() as session:
        s = await screening.upload(session, principal=SYSTEM, area_code=f.county, source=ScreeningSource.medical,
                                   content=f.content, filename="bench.csv", received_on=RECEIVED)
    total = time.perf_counter() - t0
    ratio = total / ctx.screening_floor if ctx.screening_floor else float("nan")
    return (f"{s.rows:,} rows: {s.matched:,} matched, {s.warnings:,} warnings, {s.below_threshold:,} below the "
            f"threshold, {s.unmatched:,} unmatched; {total:.2f} s = {ratio:.1f}× the floor "
            f"(parsing and checking every row alone: {f.parse_seconds:.2f} s)")


# --- standalone: `python -m bench.monitoring [--rows N]` ----------------------------------------------------


async def _run(owner: str, args: argparse.Namespace) -> list[tuple[str, float, str]]:
    from bench.run import seed
    from fupin.db import make_engine

    ctx, seeded, _ = await seed(owner, args)
    ctx.engine = make_engine(owner, name="fupin-bench-monitoring", pool_size=2)
    out = [("seed-synthetic", 0.0, seeded)]
    for name, job in (("build the file", build_file), ("floor", floor), ("upload", upload)):
        t0 = time.perf_counter()
        detail = await job(ctx)
        out.append((name, time.perf_counter() - t0, detail))
        print(f"{name}: {out[-1][1]:.2f} s, {detail}")
    await ctx.engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    """Own database, the bench's synthetic province, the three screening entries; a dated section is
    appended to bench/results.md below the main table (which `make bench` rewrites, keeping such sections)."""

    from bench.run import KEPT, ROOT, machine, scratch_database

    p = argparse.ArgumentParser(prog="python -m bench.monitoring")
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--townships", type=int, default=100)
    p.add_argument("--households", type=int, default=50_000)
    p.add_argument("--loans", type=int, default=100_000)
    args = p.parse_args(argv)
    args.users, args.import_households, args.screening_rows = 1, 0, args.rows
    started = datetime.now(UTC)
    with scratch_database("fupin_bench") as owner:
        results = asyncio.run(_run(owner, args))
    lines = [f"## Monitoring screening file (issue 17) — `python -m bench.monitoring --rows {args.rows}`", "",
             f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}.", "", "| step | seconds | result |",
             "|---|---:|---|", *(f"| {n} | {s:.2f} | {d} |" for n, s, d in results), ""]
    out = ROOT / "bench" / "results.md"
    out.write_text(out.read_text(encoding="utf-8").rstrip("\n") + "\n" + KEPT + "\n" + "\n".join(lines),
                   encoding="utf-8")
    print(f"appended to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
