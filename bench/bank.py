"""Bank postings against their floors (issue 21), measured in one run: `python -m bench.bank` (part of `make bench`).

1. `POST /bank/loan-events`, one signed repayment per request, at 1, 10 and 50 connections, against a raw
   asyncpg endpoint doing the same writes in one transaction (event row, repayment row, balance update,
   audit row: `bench/floor_app.py` `/bank-floor`); PostgreSQL lock waiters sampled from pg_stat_activity
   during each run.
2. A daily file of N repayment events (default 1,000,000, addressed by the bank's loan number) through
   `POST /bank/loan-event-files` and the worker job, against a raw COPY + set-based floor of the same
   writes (COPY the typed events, then INSERT … SELECT the event rows and repayments, UPDATE … FROM the
   balances, one audit row).

The section is appended to bench/results.md below the main table (which `python -m bench.run` rewrites,
keeping such sections).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy import text

from bench.run import (
    KEPT,
    ROOT,
    SECRET,
    Req,
    load_tool,
    machine,
    measure,
    plain_dsn,
    scratch_database,
    server,
    server_env,
)
from fupin.db import make_engine, make_sessionmaker, unit_of_work

CLIENT = "bench-bank"
INSTITUTION = "RCC-BENCH"


async def _seed(owner: str, loans: int) -> tuple[str, int]:
    """A synthetic province; every current loan with room to repay gets an application and a bank loan number."""
    from fupin.loans import postings
    from fupin.seeding import synthetic

    engine = make_engine(owner, name="bench-bank-seed", pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await synthetic.seed_synthetic(session, townships=max(10, loans // 1000), households=max(1000, loans // 2),
                                           loans=loans, province="53")
            await synthetic.analyze(session)
        async with unit_of_work(make_sessionmaker(engine)) as session:
            n = await session.scalar(text(
                """WITH l AS MATERIALIZED (
                       SELECT id AS loan_id, gen_random_uuid() AS app_id, area_code, township_code, household_id,
                              product, principal, purpose, productive, disbursed_on
                       FROM loan WHERE status = 'current' AND household_id IS NOT NULL AND application_id IS NULL
                         AND outstanding >= 1000),
                   a AS (INSERT INTO loan_application (id, area_code, county, township_code, applicant_kind, household_id,
                                                       product, amount, term_months, purpose, subsidy_eligible,
                                                       family_planning, veteran, needs_county_approval, status,
                                                       submitted_on, coop_code)
                         SELECT app_id, area_code, left(area_code, 6), township_code, 'household', household_id, product, principal, 12,
                                purpose, productive, false, false, false, 'disbursed', disbursed_on, :inst FROM l),
                   u AS (UPDATE loan SET application_id = l.app_id, coop_code = :inst,
                                         external_id = 'L' || replace(l.loan_id::text, '-', '')
                         FROM l WHERE loan.id = l.loan_id)
                   SELECT count(*) FROM l"""), {"inst": INSTITUTION})
            # encrypted under the key the benchmarked server reads (FUPIN_BANK_SECRET_KEY below)
            await postings.create_client(session, client_id=CLIENT, institution_code=INSTITUTION,
                                         area_code="530000000000", secret=SECRET, key=SECRET)
            await session.execute(text("ANALYZE loan"))
            await session.execute(text("ANALYZE loan_application"))
    finally:
        await engine.dispose()
    return f"{loans:,} synthetic loans; {n:,} current loans open to the bank (application + loan number)", int(n)


def _sign(body: bytes, stamp: str) -> str:
    return hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def _targets(dsn: str, limit: int) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT application_id::text, external_id FROM loan WHERE coop_code = $1 "
                                "AND outstanding >= 1000 ORDER BY id LIMIT $2", INSTITUTION, limit)
    finally:
        await conn.close()
    return [(r[0], r[1]) for r in rows]


def _single_posts(targets: list[tuple[str, str]], count: int, path: str) -> list[Req]:
    stamp = str(int(time.time()))
    today = datetime.now(UTC).date().isoformat()
    out = []
    for k in range(count):
        app, _ = targets[k % len(targets)]
        body = json.dumps({"event_id": f"b-{uuid.uuid4().hex}", "kind": "repayment", "application_id": app,
                           "amount": "0.01", "on": today}, separators=(",", ":"))
        out.append(Req("POST", path, body, {"Content-Type": "application/json", "X-Fupin-Client": CLIENT,
                                            "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": _sign(body.encode(), stamp)}))
    return out


class LockWaiters:
    """Samples PostgreSQL backends of the bench database waiting on a lock, every 100 ms, in a thread."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.samples, self._stop = dsn, [], threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                self.samples.append(int(await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")))
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    def __enter__(self) -> LockWaiters:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_ms_per_request(proc: psutil.Process | None, before: Any, requests: int) -> float:
    if proc is None or before is None or not requests:
        return float("nan")
    after = proc.cpu_times()
    return (after.user + after.system - before.user - before.system) * 1000 / requests


def single_posts(api: str, floor: str, dsn: str, targets: list[tuple[str, str]], seconds: float,
                 api_proc: psutil.Process | None = None, floor_proc: psutil.Process | None = None) -> list[str]:
    """Throughput and latency against the floor; also the CPU each server process spent per request (user +
    system, from the process's own counters), which the load of other processes on the machine barely moves."""
    rows = ["| connections | API req/s | p50 ms | p99 ms | errors | floor req/s | floor p99 ms | ratio | lock waiters max / mean "
            "| API CPU ms/req | floor CPU ms/req |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for conns in (1, 10, 50):
        count = max(2000, int(conns * seconds * 400))
        measure(api, "warm-up", _single_posts(targets, 500, "/bank/loan-events"), connections=conns, seconds=1,
                unique=True)
        api_cpu = api_proc.cpu_times() if api_proc is not None else None
        with LockWaiters(dsn) as waiters:
            ours = measure(api, "bank", _single_posts(targets, count, "/bank/loan-events"), connections=conns,
                           seconds=seconds, unique=True)
        api_ms = _cpu_ms_per_request(api_proc, api_cpu, ours.requests)
        floor_cpu = floor_proc.cpu_times() if floor_proc is not None else None
        base = measure(floor, "floor", _single_posts(targets, count, "/bank-floor"), connections=conns,
                       seconds=seconds, unique=True)
        floor_ms = _cpu_ms_per_request(floor_proc, floor_cpu, base.requests)
        waits = waiters.samples or [0]
        rows.append(f"| {conns} | {ours.rps:,.0f} | {ours.p50_ms:.1f} | {ours.p99_ms:.1f} | {ours.errors} | "
                    f"{base.rps:,.0f} | {base.p99_ms:.1f} | {ours.rps / base.rps if base.rps else 0:.2f}× | "
                    f"{max(waits)} / {statistics.fmean(waits):.2f} | {api_ms:.2f} | {floor_ms:.2f} |")
        print(rows[-1])
    return rows


def _file_lines(targets: list[tuple[str, str]], events: int, tag: str) -> list[str]:
    today = datetime.now(UTC).date().isoformat()
    lines = ["event_id,kind,external_id,amount,on"]
    lines += [f"{tag}-{k},repayment,{targets[k % len(targets)][1]},0.01,{today}" for k in range(events)]
    return lines


async def file_floor(dsn: str, targets: list[tuple[str, str]], events: int) -> float:
    """COPY the typed events, then the same writes set-based: event rows, repayments, balances, one audit row."""
    today = datetime.now(UTC).date()
    loans = {}
    conn = await asyncpg.connect(dsn)
    try:
        for row in await conn.fetch("SELECT id, external_id, area_code FROM loan WHERE coop_code = $1", INSTITUTION):
            loans[row["external_id"]] = (row["id"], row["area_code"])
        records = []
        for k in range(events):
            app, ext = targets[k % len(targets)]
            loan_id, area = loans[ext]
            records.append((f"floor-{k}", uuid.UUID(app), loan_id, area, Decimal("0.01"), today,
                            json.dumps({"event_id": f"floor-{k}", "kind": "repayment", "external_id": ext,
                                        "amount": "0.01", "on": today.isoformat()})))
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SET LOCAL fupin.scope = '%'")
            await conn.execute("CREATE TEMP TABLE floor_stage (event_id text, application_id uuid, loan_id uuid, "
                               "area_code text, amount numeric(14,2), on_date date, payload text) ON COMMIT DROP")
            await conn.copy_records_to_table("floor_stage", records=records)
            await conn.execute(
                "INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, application_id, "
                "status, payload, received_at) SELECT gen_random_uuid(), $1, event_id, "
                "encode(sha256(convert_to(payload, 'UTF8')), 'hex'), 'repayment', '530000000000', left('530000000000', 6), application_id, "
                "'applied', payload::jsonb, now() FROM floor_stage", CLIENT)
            await conn.execute(
                "INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on, source_event_id, recorded_at) "
                "SELECT gen_random_uuid(), loan_id, area_code, left(area_code, 6), amount, on_date, event_id, now() FROM floor_stage")
            await conn.execute(
                "UPDATE loan l SET outstanding = l.outstanding - s.total, updated_at = now() FROM "
                "(SELECT loan_id, sum(amount) AS total FROM floor_stage GROUP BY loan_id) s WHERE l.id = s.loan_id")
            await conn.execute(
                "INSERT INTO audit_event (occurred_at, actor_name, role, area_code, county_code, action, entity, "
                "entity_id, result) VALUES (now(), 'bench', 'bank', '530000000000', '530000', 'bank.loan_events', "
                "'bench', 'floor', 'ok')")
        return time.perf_counter() - t0
    finally:
        await conn.close()


# The apply's statements by what they do (the first words of each of fupin.loans.batch_sql's statements).
PHASES = (("WITH raw", "parse and check the lines"), ("WITH chunk", "evaluate (idempotency, references, outcomes)"),
          ("INSERT INTO bank_loan_event", "record the events"), ("INSERT INTO loan_repayment", "repayment rows"),
          ("WITH applied", "loan balances and statuses, steps, notices"),
          ("INSERT INTO bank_batch_result", "keep the per-line results"))


class PhaseTimes:
    """Seconds spent in each kind of statement while the worker applies a file (AsyncSession.execute timed)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> PhaseTimes:
        from sqlalchemy.ext.asyncio import AsyncSession

        self._orig = original = AsyncSession.execute
        seconds = self.seconds

        async def timed(session: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            sql = " ".join(str(statement).split())
            phase = next((name for start, name in PHASES if sql.startswith(start)), "other statements")
            t0 = time.perf_counter()
            try:
                return await original(session, statement, *args, **kwargs)
            finally:
                seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - t0

        AsyncSession.execute = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        AsyncSession.execute = self._orig  # type: ignore[method-assign]


async def file_route(api: str, owner: str, targets: list[tuple[str, str]], events: int,
                     phases: PhaseTimes | None = None) -> tuple[float, float, dict[str, Any]]:
    """Upload through the API, then apply with the worker's handler (as the worker runs it): (upload s, apply s)."""
    from fupin.db import app_url
    from fupin.loans import bank_files  # noqa: F401  (registers the handler)
    from fupin.settings import Settings
    from fupin_worker import runner

    body = ("\n".join(_file_lines(targets, events, "file")) + "\n").encode()
    stamp = str(int(time.time()))
    headers = {"X-Fupin-Client": CLIENT, "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": _sign(body, stamp),
               "Content-Type": "text/csv"}

    async def chunks() -> Any:  # streamed, as a bank's client would send a large file
        for start in range(0, len(body), 1 << 20):
            yield body[start:start + (1 << 20)]

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as client:
        r = await client.post(api + "/bank/loan-event-files", content=chunks(), headers=headers)
    upload = time.perf_counter() - t0
    r.raise_for_status()
    key = f"bank.apply_file:{CLIENT}:{r.json()['id']}"
    settings = Settings(database_url=owner, environment="test")
    engine = make_engine(app_url(settings), name="bench-bank-worker", pool_size=2)
    try:
        t0 = time.perf_counter()
        if phases is not None:
            with phases:
                outcome = await runner.execute(make_sessionmaker(engine), settings, key)
        else:
            outcome = await runner.execute(make_sessionmaker(engine), settings, key)
        apply = time.perf_counter() - t0
        async with make_sessionmaker(engine)() as s:
            await s.execute(text("SELECT set_config('fupin.scope', '%', true)"))
            result = (await s.execute(text("SELECT status, result FROM job_run WHERE key = :k"), {"k": key})).one()
    finally:
        await engine.dispose()
    if outcome != "done":
        raise RuntimeError(f"file job ended {outcome}: {result}")
    return upload, apply, dict(result.result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bank", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--loans", type=int, default=100_000)
    p.add_argument("--file-events", type=int, default=1_000_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.loans, args.file_events, args.seconds = 2_000, 2_000, 1.0
    started = datetime.now(UTC)
    with scratch_database("fupin_bench_bank") as owner:
        seeded, open_loans = asyncio.run(_seed(owner, args.loans))
        print(seeded)
        dsn = plain_dsn(owner)
        targets = asyncio.run(_targets(dsn, min(open_loans, 200_000)))
        env = server_env(owner, BENCH_DSN=dsn)
        with server("bench.floor_app:app", env) as (floor_base, floor_proc), \
                server("fupin_api.asgi:app", env) as (api_base, api_proc):
            singles = single_posts(api_base, floor_base, dsn, targets, args.seconds, api_proc, floor_proc)
            floor_s = asyncio.run(file_floor(dsn, targets, args.file_events))
            print(f"file floor: {floor_s:.1f} s")
            phases = PhaseTimes()
            upload_s, apply_s, result = asyncio.run(file_route(api_base, owner, targets, args.file_events, phases))
            print(f"file route: upload {upload_s:.1f} s, apply {apply_s:.1f} s: {result}")
        total = upload_s + apply_s
        lines = [
            f"## Bank postings (issue 21) — {started:%Y-%m-%d %H:%M} UTC, `python -m bench.bank`",
            "",
            f"- machine: {machine()}; load from {load_tool()}",
            f"- data: {seeded}",
            "",
            f"### `POST /bank/loan-events`, one signed repayment per request, {args.seconds:g} s per run",
            "",
            "Floor: a raw asyncpg endpoint doing the same writes (event row, repayment row, balance update, audit "
            "row) in one transaction. Lock waiters: backends of the bench database in a `Lock` wait, sampled every "
            "100 ms during the API run.",
            "",
            *singles,
            "",
            f"### A daily file of {args.file_events:,} repayments (CSV, by the bank's loan number)",
            "",
            "| path | seconds | ratio to the floor |",
            "|---|---:|---:|",
            f"| floor: COPY typed events + INSERT…SELECT events, repayments + UPDATE…FROM balances + audit row "
            f"| {floor_s:.1f} | 1.00× |",
            f"| upload (streamed, signed, staged) | {upload_s:.1f} | |",
            f"| apply (worker job: parse, check, decide, write, results) | {apply_s:.1f} | |",
            f"| file route total | {total:.1f} | {total / floor_s:.2f}× (goal ≤ 2×) |",
            "",
            "Where the apply's time went (statements timed in the worker, all chunks):",
            "",
            "| phase | seconds |",
            "|---|---:|",
            *(f"| {name} | {sec:.1f} |" for name, sec in sorted(phases.seconds.items(), key=lambda x: -x[1])),
            "",
            f"Job result: `{json.dumps(result, ensure_ascii=False)}`",
            "",
        ]
        out = ROOT / "bench" / ("results.md" if not args.smoke else ".work/results-bank-smoke.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        old = out.read_text(encoding="utf-8") if out.exists() else "# fupin benchmark results\n"
        out.write_text(old.rstrip("\n") + "\n" + KEPT + "\n" + "\n".join(lines), encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
