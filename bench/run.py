"""`make bench` (`python -m bench.run`): one command that builds its own database, seeds a synthetic
province with `seed-synthetic`, measures API routes against two floors measured in the same run (a bare
FastAPI endpoint and a raw asyncpg primary-key fetch), runs the job benchmarks in bench/jobs.py, records
peak RSS, writes bench/results.md and drops the database.

Benchmarks are not tests: nothing here fails on a time. `--smoke` runs a tiny version (tests/bench).
Other domains extend `ROUTES` (below) and `bench.jobs.JOBS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psutil
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bench.jobs import JOBS
from fupin.db import make_engine, make_sessionmaker, unit_of_work
from fupin.devservers import port_open, start_embedded_postgres
from fupin.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-1"
SECRET = "bench-secret-" + "x" * 40


def server_env(owner: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked server: production settings (as deployed), so the keys the server
    refuses to start without outside development are given strong values; no Redis (jobs are not timed)."""
    return {"FUPIN_DATABASE_URL": owner, "FUPIN_REDIS_URL": "", "FUPIN_ENVIRONMENT": "production",
            "FUPIN_JWT_SECRET": SECRET, "FUPIN_BANK_SECRET_KEY": SECRET, "FUPIN_AUDIT_CHECKPOINT_KEY": SECRET,
            **extra}


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchContext:
    owner_url: str
    engine: AsyncEngine
    townships: list[str]
    villages: list[str]
    users: list[str]
    token: str = ""
    households: list[str] = field(default_factory=list)  # ids of households in the bench users' area
    bank_client: str = ""
    bank_secret: str = ""
    bank_applications: list[str] = field(default_factory=list)  # applications with a disbursed seeded loan
    import_households: int = 10_000
    screening_rows: int = 500_000  # rows in the monitoring screening file (bench/monitoring.py)
    screening_floor: float = 0.0  # seconds of its COPY + INSERT … SELECT floor, measured in the same run

    @contextlib.asynccontextmanager
    async def owner_session(self) -> AsyncIterator[AsyncSession]:
        async with unit_of_work(make_sessionmaker(self.engine)) as session:
            yield session

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class RouteBench:
    name: str
    requests: Callable[[BenchContext], list[Req]]
    server: str = "api"  # "api" (the real app) or "floor" (bench/floor_app.py)
    floor: bool = False
    # CPU-bound routes (argon2: ~0.5 s per verify here) queue 50 callers past the run's length, so no
    # request would finish inside it; they run at their own concurrency, named in the route's label.
    connections: int | None = None
    # Every request differs and must be sent once (e.g. a fresh bank event_id): wrk's threads take disjoint
    # slices, and the warm-up gets requests of its own.
    unique: bool = False


def _form(ctx: BenchContext) -> list[Req]:
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    return [Req("POST", "/auth/token", urlencode({"username": u, "password": PASSWORD}), ctype) for u in ctx.users]


def _bank_repayments(ctx: BenchContext, count: int = 20_000) -> list[Req]:
    """Signed single repayment events of ¥0.01, each with a fresh event_id, spread over the seeded loans."""
    stamp = str(int(time.time()))
    today = datetime.now(UTC).date().isoformat()
    out = []
    for k in range(count):
        app = ctx.bank_applications[k % len(ctx.bank_applications)]
        body = json.dumps({"event_id": f"bench-{uuid.uuid4().hex}", "kind": "repayment", "application_id": app,
                           "amount": "0.01", "on": today}, separators=(",", ":"))
        sig = hmac.new(ctx.bank_secret.encode(), stamp.encode() + b"." + body.encode(), hashlib.sha256).hexdigest()
        out.append(Req("POST", "/bank/loan-events", body, {
            "Content-Type": "application/json", "X-Fupin-Client": ctx.bank_client, "X-Fupin-Timestamp": stamp,
            "X-Fupin-Signature": sig}))
    return out


ROUTES: list[RouteBench] = [
    RouteBench("bare FastAPI endpoint (floor)", lambda _: [Req("GET", "/bare")], server="floor", floor=True),
    RouteBench("raw asyncpg PK fetch (floor)", lambda c: [Req("GET", f"/pk/{v}") for v in c.villages], server="floor",
               floor=True),
    RouteBench("GET /areas/{code}", lambda c: [Req("GET", f"/areas/{v}", headers=c.auth()) for v in c.villages]),
    RouteBench(
        "GET /areas?level=village&limit=50 (page of 50)",
        lambda c: [Req("GET", f"/areas?level=village&limit=50&cursor={v}", headers=c.auth()) for v in c.villages[: max(1, len(c.villages) - 60)]],
    ),
    RouteBench("GET /households/{id}", lambda c: [Req("GET", f"/households/{h}", headers=c.auth()) for h in c.households]),
    RouteBench(
        "GET /households?area={village}&limit=50 (page of 50)",
        lambda c: [Req("GET", f"/households?area={v}&limit=50", headers=c.auth()) for v in c.villages],
    ),
    RouteBench("POST /bank/loan-events (HMAC-signed repayment, fresh event_id)", _bank_repayments, unique=True),
    RouteBench("POST /auth/token (argon2; 4 connections)", _form, connections=4),
]


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    floor: bool = False
    cpu_ms: float = float("nan")  # the server process's CPU (user + system) per request during the run


# --- load generation -------------------------------------------------------------------------------


def _lua(data: str, *, unique: bool, threads: int = 2) -> str:
    """A wrk script reading its requests from `data` (one a line: method, path, headers, body, tab-separated;
    headers as key\x1evalue pairs joined by \x1f): no request list is compiled into the script itself."""
    step = "nthreads" if unique else "1"
    return (
        "local reqs = {}\n"
        f"for line in io.lines({json.dumps(data)}) do\n"
        "  local m, p, h, b = line:match('^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$')\n"
        "  local headers = {}\n"
        "  for k, v in h:gmatch('([^\\31]+)\\30([^\\31]*)') do headers[k] = v end\n"
        "  reqs[#reqs + 1] = {m, p, headers, b ~= '' and b or nil}\n"
        "end\n"
        "local counter = 0\n"
        "function setup(thread)\n  thread:set('tid', counter)\n  counter = counter + 1\nend\n"
        f"local nthreads = {threads}\n"
        f"local i = {'-1' if unique else 'math.random(#reqs)'}\n"
        "request = function()\n"
        f"  if i < 0 then i = (tid or 0) end\n"
        f"  i = i + {step}\n"
        "  local r = reqs[(i - 1) % #reqs + 1]\n"
        "  return wrk.format(r[1], r[2], r[3], r[4])\nend\n"
    )


def _data(reqs: list[Req]) -> str:
    lines = []
    for r in reqs:
        headers = "\x1f".join(f"{k}\x1e{v}" for k, v in r.headers.items())
        lines.append(f"{r.method}\t{r.path}\t{headers}\t{r.body or ''}")
    return "\n".join(lines) + "\n"


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]
    return float(m.group(1)) * scale


def run_wrk(base: str, name: str, reqs: list[Req], *, connections: int, seconds: float, unique: bool = False) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as d:
        d.write(_data(reqs))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        threads = min(2, connections)  # wrk needs at least one connection per thread
        f.write(_lua(d.name, unique=unique, threads=threads))
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "30s",
             "-s", script, base],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(script)
        os.unlink(d.name)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "50" not in pct or "99" not in pct:
        print(f"unexpected wrk output for {name}:\n{out}", file=sys.stderr)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    nan = float("nan")
    return Result(name, rps, _ms(pct["50"]) if "50" in pct else nan, _ms(pct["99"]) if "99" in pct else nan, total, errors)


async def _run_httpx(base: str, name: str, reqs: list[Req], *, connections: int, seconds: float,
                     unique: bool = False) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                r = reqs[i % len(reqs)]
                i += connections if unique else 1
                t0 = time.perf_counter()
                try:
                    resp = await client.request(r.method, r.path, content=r.body, headers=r.headers)
                    ok = resp.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker(k if unique else k * 7) for k in range(connections)))
        elapsed = time.perf_counter() - started
    qs = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Result(name, len(latencies) / elapsed, qs[49], qs[98], len(latencies), errors)


def measure(base: str, name: str, reqs: list[Req], *, connections: int, seconds: float, unique: bool = False) -> Result:
    if shutil.which("wrk"):
        return run_wrk(base, name, reqs, connections=connections, seconds=seconds, unique=unique)
    return asyncio.run(_run_httpx(base, name, reqs, connections=connections, seconds=seconds, unique=unique))


def load_tool() -> str:
    return "wrk (2 threads)" if shutil.which("wrk") else "httpx asyncio load generator (wrk not installed)"


# --- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pythonpath() -> str:
    parts = [str(ROOT), *(str(ROOT / p) for p in ("shared", "services/api", "services/worker"))]
    return os.pathsep.join([*parts, os.environ.get("PYTHONPATH", "")])


@contextlib.contextmanager
def server(app: str, env: dict[str, str]) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    full = {**os.environ, **env, "PYTHONPATH": _pythonpath()}
    # The app's JSON lines (one access line per request) go to a file, as a log collector would take them,
    # not through this process's terminal: a slow console would throttle the server it measures.
    logs = ROOT / "bench" / ".work"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{app.split(':')[0]}.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
             "--log-level", "warning"],
            env=full, cwd=ROOT, stdout=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + ("/healthz" if app.startswith("fupin") else "/bare"), timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class PeakRss:
    """Samples a process's RSS every 50 ms in a thread."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak, self._stop = proc, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- database ---------------------------------------------------------------------------------------


def admin_url() -> str:
    for var in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL"):
        if url := os.environ.get(var):
            return url
    if port_open("127.0.0.1", 5432):
        return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    return start_embedded_postgres(ROOT / ".data" / "bench-pg", database="postgres")


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A database of its own on the admin server (`admin_url`), migrated to head; yields its owner URL and
    drops it afterwards (unless `keep`). Every benchmark starts from here, so none shares another's rows."""
    admin = admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        owner = make_url(admin).set(database=name).render_as_string(hide_password=False)
        upgrade(owner)
        yield owner
    finally:
        if not keep:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _bank_applications(session: AsyncSession, county: str, count: int) -> list[str]:
    """Give `count` current seeded loans of the county a disbursed application, so the bank can post to them."""
    rows = await session.scalars(text(
        """WITH l AS MATERIALIZED (
               SELECT id AS loan_id, gen_random_uuid() AS app_id, area_code, township_code, household_id, product,
                      principal, purpose, productive, disbursed_on, coop_code
               FROM loan WHERE status = 'current' AND household_id IS NOT NULL AND application_id IS NULL
                 AND outstanding >= 1000 AND area_code LIKE :county ORDER BY id LIMIT :n),
           a AS (INSERT INTO loan_application (id, area_code, county, township_code, applicant_kind, household_id, product,
                                               amount, term_months, purpose, subsidy_eligible, family_planning,
                                               veteran, needs_county_approval, status, submitted_on, coop_code)
                 SELECT app_id, area_code, left(area_code, 6), township_code, 'household', household_id, product, principal, 12, purpose,
                        productive, false, false, false, 'disbursed', disbursed_on, coop_code FROM l),
           u AS (UPDATE loan SET application_id = l.app_id FROM l WHERE loan.id = l.loan_id)
           SELECT app_id FROM l"""
    ), {"county": county[:6] + "%", "n": count})
    return [str(a) for a in rows]


async def seed(owner: str, args: argparse.Namespace) -> tuple[BenchContext, str, str]:
    from fupin.auth import service as auth_service
    from fupin.auth.roles import Role
    from fupin.loans import postings
    from fupin.seeding import synthetic

    engine = make_engine(owner, name="fupin-bench", pool_size=2)
    timings: dict[str, float] = {}
    async with unit_of_work(make_sessionmaker(engine)) as session:
        t0 = time.perf_counter()
        counts = await synthetic.seed_synthetic(
            session, townships=args.townships, households=args.households, loans=args.loans, province="53"
        )
        timings["seed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await synthetic.analyze(session)
        timings["analyze"] = time.perf_counter() - t0
    async with unit_of_work(make_sessionmaker(engine)) as session:
        users = []
        for k in range(args.users):
            name = f"bench_admin_{k}"
            await auth_service.create_user(session, username=name, password=PASSWORD, role=Role.county_admin,
                                           area_code="530000000000")
            users.append(name)
        townships = list(await session.scalars(text("SELECT code FROM area WHERE level = 'township' ORDER BY code")))
        villages = list(await session.scalars(text("SELECT code FROM area WHERE level = 'village' ORDER BY code")))
        version = str(await session.scalar(text("SHOW server_version")))
        households = [str(h) for h in await session.scalars(text("SELECT id FROM household ORDER BY id LIMIT 2000"))]
        county = townships[0][:6] + "000000"
        applications = await _bank_applications(session, county, 200)
        bank_secret = "bench-bank-secret-" + uuid.uuid4().hex
        # encrypted under the key the benchmarked server reads (FUPIN_BANK_SECRET_KEY in main)
        await postings.create_client(session, client_id="bench-coop", institution_code="RCC-BENCH", area_code=county,
                                     secret=bank_secret, key=SECRET)
    await engine.dispose()  # each asyncio.run needs its own engine; the jobs make a new one
    ctx = BenchContext(owner_url=owner, engine=engine, townships=townships, villages=villages, users=users,
                       households=households, bank_client="bench-coop", bank_secret=bank_secret,
                       bank_applications=applications, import_households=args.import_households,
                       screening_rows=args.screening_rows)
    return ctx, f"{counts.line()} (COPY; ANALYZE {timings['analyze']:.1f} s)", version.split()[0]


# --- report -----------------------------------------------------------------------------------------


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average at the end {load} (other processes share the CPUs)"
    )


def render(
    args: argparse.Namespace, seeded: str, pg: str, results: list[Result], jobs: list[tuple[str, float, str]],
    rss: dict[str, int], started: datetime,
) -> str:
    bare = next((r.rps for r in results if r.name.startswith("bare")), 0.0)
    pk = next((r.rps for r in results if r.name.startswith("raw asyncpg")), 0.0)
    cmd = "make bench" if not args.smoke else "python -m bench.run --smoke"
    extra = f" --townships {args.townships} --households {args.households} --loans {args.loans}"
    lines = [
        "# fupin benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- PostgreSQL {pg} on the same machine; API = one uvicorn process, pool 10; load from {load_tool()}",
        f"- reproduce: `{cmd}` (or `python -m bench.run{extra}`)",
        f"- data: {seeded}",
        "",
        f"## API at {args.connections} concurrent connections on loopback, {args.seconds:g} s per route",
        "",
        "| route | req/s | p50 ms | p99 ms | requests | errors | × bare floor | × asyncpg PK floor "
        "| server CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.requests:,} | {r.errors} | "
            f"{r.rps / bare if bare else 0:.2f} | {r.rps / pk if pk else 0:.2f} | {r.cpu_ms:.2f} |"
        )
    lines += ["", "## Against the floors and goals (issue 13)", "",
              "| route or job | now | floor | ratio | goal |", "|---|---:|---:|---:|---|"]
    lines += _goal_rows(results, jobs)
    lines += ["", "## Jobs", "", "| job | seconds | result |", "|---|---:|---|"]
    lines += [f"| {name} | {secs:.2f} | {detail} |" for name, secs, detail in jobs]
    lines += ["", "## Memory (peak RSS)", "", "| process | MiB |", "|---|---:|"]
    lines += [f"| {name} | {value / 2**20:,.0f} |" for name, value in rss.items()]
    lines += [
        "",
        "Figures drift ±15–25% between runs on a shared machine; compare ratios measured in the same run.",
        "Routes and jobs not listed have no benchmark yet (domains add theirs to `bench.run.ROUTES` and "
        "`bench.jobs.JOBS`).",
        "",
    ]
    return "\n".join(lines)


ROUTE_GOALS = {
    "GET /areas/{code}": (0.5, 150.0),
    "GET /households/{id}": (0.5, 150.0),
    "GET /households?area={village}&limit=50 (page of 50)": (0.3, 250.0),
    "GET /areas?level=village&limit=50 (page of 50)": (0.3, 250.0),
}
EXPORT_JOB = "households: CSV roster export of the province, streamed (GET /households/export)"
EXPORT_FLOOR = "households: roster export floor (COPY of the same join to CSV)"
FLOOR_NAMES = {"repayment rate per township (aggregate SELECT floor)": "bare aggregate"}
JOB_GOALS = {  # job: (its floor in the same run, the largest ratio allowed)
    "assessment: repayment-rate check, every township (run_checks)":
        ("repayment rate per township (aggregate SELECT floor)", 1.5),
}


def _goal_rows(results: list[Result], jobs: list[tuple[str, float, str]]) -> list[str]:
    pk = next((r for r in results if r.name.startswith("raw asyncpg")), None)
    out = []
    for r in results:
        if r.name in ROUTE_GOALS and pk is not None and pk.rps:
            share, p99 = ROUTE_GOALS[r.name]
            ratio = r.rps / pk.rps
            met = "met" if ratio >= share and r.p99_ms <= p99 else "MISSED"
            out.append(f"| {r.name} | {r.rps:,.0f} req/s, p99 {r.p99_ms:.0f} ms | {pk.rps:,.0f} req/s (raw asyncpg PK) "
                       f"| {ratio:.2f}× | ≥ {share}× and p99 ≤ {p99:.0f} ms: {met} |")
    seconds = {name: secs for name, secs, _ in jobs}
    for name, (floor, most) in JOB_GOALS.items():
        if name in seconds and floor in seconds and seconds[floor] > 0:
            ratio = seconds[name] / seconds[floor]
            met = "met" if ratio <= most else "MISSED"
            out.append(f"| {name} | {seconds[name]:.2f} s | {seconds[floor]:.2f} s ({FLOOR_NAMES.get(floor, floor)}) "
                       f"| {ratio:.2f}× | ≤ {most}×: {met} |")
    export = next((j for j in jobs if j[0] == EXPORT_JOB), None)
    if export is not None and EXPORT_FLOOR in seconds and seconds[EXPORT_FLOOR] > 0:
        peak = re.search(r"peak ([\d,]+) MiB", export[2])
        mib = int(peak.group(1).replace(",", "")) if peak else 0
        met = "met" if peak and mib <= 300 else "MISSED"
        out.append(f"| {EXPORT_JOB} | {export[1]:.2f} s, peak RSS {mib:,} MiB | {seconds[EXPORT_FLOOR]:.2f} s (COPY of "
                   f"the same join) | {export[1] / seconds[EXPORT_FLOOR]:.2f}× | streamed, peak RSS ≤ 300 MiB, time "
                   f"reported: {met} |")
    return out


KEPT = "\n---\n"


def _kept_sections(out: Path) -> str:
    """Sections the separate scripts (bench/subsidies.py, bench/assessment.py) appended below the table, each
    dated, are kept under the new run's report."""
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    return old[old.index(KEPT):] if KEPT in old else ""


# --- main -------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--smoke", action="store_true", help="tiny sizes and 1 s per route; writes bench/.work/")
    p.add_argument("--townships", type=int, default=100)
    p.add_argument("--households", type=int, default=50_000)
    p.add_argument("--loans", type=int, default=100_000)
    p.add_argument("--users", type=int, default=50, help="distinct users for token issue")
    p.add_argument("--import-households", type=int, default=10_000, help="households in the .xlsx import job")
    p.add_argument("--screening-rows", type=int, default=500_000, help="rows in the monitoring screening file")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--routes-only", action="store_true",
                   help="only the API routes (no jobs); writes bench/.work/results-routes.md unless --out")
    args = p.parse_args(argv)
    if args.smoke:
        args.townships, args.households, args.loans, args.users = 2, 200, 400, 3
        args.import_households = 50
        args.screening_rows = 2_000
        # 3 s per route: on a loaded CI machine a 1 s run may complete no request at all.
        args.connections, args.seconds = min(args.connections, 4), 3.0
    default = ".work/results-smoke.md" if args.smoke else ".work/results-routes.md" if args.routes_only else "results.md"
    args.out = args.out or (ROOT / "bench" / default)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = datetime.now(UTC)
    with scratch_database("fupin_bench", keep=args.keep) as owner:
        print(f"seeding {make_url(owner).database}: {args.townships} townships, {args.households} households, {args.loans} loans")
        ctx, seeded, pg_version = asyncio.run(seed(owner, args))
        print(seeded)
        env = server_env(owner, FUPIN_JWT_TTL_SECONDS="3600", BENCH_DSN=plain_dsn(owner))
        results: list[Result] = []
        rss: dict[str, int] = {}
        with server("bench.floor_app:app", env) as (floor_base, floor_proc), \
                server("fupin_api.asgi:app", env) as (api_base, api):
            login = httpx.post(api_base + "/auth/token", data={"username": ctx.users[0], "password": PASSWORD}, timeout=10)
            login.raise_for_status()
            ctx.token = login.json()["access_token"]
            with PeakRss(api) as peak:
                for route in ROUTES:
                    base = floor_base if route.server == "floor" else api_base
                    conns = min(route.connections or args.connections, args.connections)
                    # Warm up connections and caches (not the CPU-bound routes: their backlog would
                    # spill into the measured run), then measure.
                    if route.connections is None:
                        measure(base, route.name, route.requests(ctx), connections=conns,
                                seconds=min(1.0, args.seconds), unique=route.unique)
                    proc = floor_proc if route.server == "floor" else api
                    cpu0 = sum(proc.cpu_times()[:2])
                    result = measure(base, route.name, route.requests(ctx), connections=conns, seconds=args.seconds,
                                     unique=route.unique)
                    # CPU per request moves far less than req/s on a shared machine, and bounds req/s on 2 cores
                    result.cpu_ms = (sum(proc.cpu_times()[:2]) - cpu0) * 1000 / max(1, result.requests)
                    result.floor = route.floor
                    results.append(result)
                    print(f"{result.name}: {result.rps:,.0f} req/s p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms"
                          f" errors {result.errors}, server CPU {result.cpu_ms:.2f} ms per request")
            rss["API (uvicorn, during the route runs)"] = peak.peak
        jobs: list[tuple[str, float, str]] = []
        seed_s = float(re.search(r"in ([\d.]+) s", seeded).group(1))  # type: ignore[union-attr]
        jobs.append((f"seed-synthetic COPY ({args.loans:,} loans)", seed_s, seeded.split(" in ")[0]))

        async def run_jobs() -> None:
            ctx.engine = make_engine(owner, name="fupin-bench-jobs", pool_size=2)
            for job in JOBS:
                t0 = time.perf_counter()
                detail = await job.run(ctx)
                jobs.append((job.name, time.perf_counter() - t0, detail))
                print(f"{job.name}: {jobs[-1][1]:.2f} s, {detail}")
            await ctx.engine.dispose()

        if not args.routes_only:
            with PeakRss(psutil.Process()) as worker_peak:
                asyncio.run(run_jobs())
            rss["worker side: the job handlers (run in the bench process, as the worker runs them)"] = worker_peak.peak
            rss["bench process overall (seeding + jobs + workbook build)"] = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = render(args, seeded, pg_version, results, jobs, rss, started)
        args.out.write_text(report + _kept_sections(args.out), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
