"""`fupin` command line: migrations, bootstrap users and areas, audit verification, dev run. The installed
`fupin` command is `fupin_api.cli:app`, which adds the commands that need the API layer (export-openapi):
the core never imports the API or the worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.auth.principal import SYSTEM
from fupin.auth.roles import Role
from fupin.db import make_engine, make_sessionmaker, owner_url, unit_of_work
from fupin.settings import InsecureSettings, Settings, get_settings, require_secure

app = typer.Typer(help="fupin 扶贫 backend tools", no_args_is_help=True)
T = TypeVar("T")


def _settings() -> Settings:
    settings = get_settings()
    if not settings.database_url:
        typer.echo("FUPIN_DATABASE_URL is not set (make run sets it for the embedded server)", err=True)
        raise typer.Exit(2)
    return settings


def _with_session(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        # Bootstrap commands run as the owner: they may create the very first admin.
        engine = make_engine(owner_url(_settings()), name="fupin-cli", pool_size=1)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                return await fn(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply Alembic migrations (alembic upgrade head)."""
    from fupin.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"migrated to {revision}")
    if settings.distributed:
        distribute()


@app.command()
def distribute() -> None:
    """On a Citus coordinator: distribute area-owned tables by county, make shared ones reference tables."""
    from fupin.distribution import distribute as run

    statements = asyncio.run(run(_settings().database_url))
    typer.echo(f"distributed ({len(statements)} statements)")


@app.command("create-area")
def create_area(
    code: str, name: str, population: Annotated[int, typer.Option(help="registered rural population")] = 0
) -> None:
    """Create an area; its level follows from the 12-digit code."""
    from fupin.areas import service

    async def go(session: AsyncSession) -> None:
        await service.create_area(session, principal=SYSTEM, code=code, name=name, population=population)

    _with_session(go)
    typer.echo(f"area {code} {name} created")


@app.command("create-user")
def create_user(
    username: str,
    role: Annotated[Role, typer.Option(help="role")],
    area: Annotated[str, typer.Option(help="12-digit area code of the user's scope")],
    full_name: str = "",
) -> None:
    """Create a user; the password comes from FUPIN_PASSWORD or stdin."""
    from fupin.audit import service as audit
    from fupin.auth import service

    password = os.environ.get("FUPIN_PASSWORD") or sys.stdin.readline().strip()
    if len(password) < 8:
        typer.echo("password must have at least 8 characters", err=True)
        raise typer.Exit(2)

    async def go(session: AsyncSession) -> None:
        user = await service.create_user(
            session, username=username, password=password, role=role, area_code=area, full_name=full_name
        )
        await audit.record(session, SYSTEM, action="user.create", entity="user", entity_id=user.id, area_code=area,
                           after={"username": username, "role": role.value})

    _with_session(go)
    typer.echo(f"user {username} ({role.value}, {area}) created")


@app.command("verify-audit")
def verify_audit(
    county: Annotated[str | None, typer.Option(help="verify one county's chain (6 digits); default: all")] = None,
) -> None:
    """Seal pending audit rows, then check every chain row by row and against its signed checkpoints.

    Prints the rows checked, the unsealed count and oldest age; exits 1 naming each problem found."""
    from fupin.audit import sealer

    settings = _settings()

    async def go() -> sealer.AuditReport:
        engine = make_engine(owner_url(settings), name="fupin-cli", pool_size=1)
        try:
            sm = make_sessionmaker(engine)
            await sealer.seal_pending(sm, key=settings.audit_checkpoint_key,
                                      counties=[county] if county else None)
            async with unit_of_work(sm) as session:
                return await sealer.verify(session, key=settings.audit_checkpoint_key, county=county)
        finally:
            await engine.dispose()

    report = asyncio.run(go())
    age = f"{report.oldest_unsealed_seconds:.0f} s" if report.oldest_unsealed_seconds is not None else "-"
    typer.echo(f"{'OK' if report.ok else 'BROKEN'}: {report.rows} sealed rows in {report.chains} chains, "
               f"{report.checkpoints} checkpoints; {report.unsealed} unsealed (oldest {age})")
    for p in report.problems:
        typer.echo(f"  chain {p.county_code} position {p.seq} (row id {p.event_id}): {p.reason}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("seed-synthetic")
def seed_synthetic(
    townships: Annotated[int, typer.Option(help="townships in the province (20 per county)")] = 500,
    households: Annotated[int, typer.Option(help="registered households, spread evenly over villages")] = 500_000,
    loans: Annotated[int, typer.Option(help="household loans, in every status, with repayments")] = 1_000_000,
    villages_per_township: Annotated[int, typer.Option(help="villages in each township")] = 10,
    province: Annotated[str, typer.Option(help="two-digit province code (prefectures 90-99 are used)")] = "53",
    seed: Annotated[int, typer.Option(help="random seed: same arguments, same rows")] = 20140101,
) -> None:
    """Build a large synthetic province fast with COPY (refuses if the province already has areas)."""
    from fupin.seeding import synthetic

    async def go(session: AsyncSession) -> synthetic.SeedCounts:
        counts = await synthetic.seed_synthetic(
            session, townships=townships, households=households, loans=loans,
            villages_per_township=villages_per_township, province=province, seed=seed,
        )
        await synthetic.analyze(session)
        return counts

    from fupin.errors import DomainError

    try:
        typer.echo("seeded " + _with_session(go).line())
    except DomainError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command("seed-demo")
def seed_demo(seed: Annotated[int, typer.Option(help="random seed")] = 2016) -> None:
    """The demo county (skipped when the database already has areas); prints one user per role."""
    from fupin.seeding import demo

    report = _with_session(lambda session: demo.seed_demo(session, seed=seed))
    typer.echo(report.text())


@app.command()
def run(with_worker: bool = True) -> None:
    """Development run: embedded PostgreSQL/Redis when no URLs are set, migrations, API and one worker."""
    from fupin.devservers import DevDependencyMissing, start_embedded_postgres, start_embedded_redis
    from fupin.migrate import upgrade

    settings = get_settings()
    try:
        require_secure(settings, process="fupin run")
    except InsecureSettings as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    env = dict(os.environ)
    data = Path(settings.data_dir)
    redis_proc = None
    try:
        if not settings.database_url:
            env["FUPIN_DATABASE_URL"] = start_embedded_postgres(data / "pg", stop_at_exit=True)
            typer.echo(f"embedded PostgreSQL: {env['FUPIN_DATABASE_URL']}")
        if not settings.redis_url:
            env["FUPIN_REDIS_URL"], redis_proc = start_embedded_redis(data / "redis")
            typer.echo(f"embedded Redis: {env['FUPIN_REDIS_URL']}")
    except DevDependencyMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    upgrade(env["FUPIN_DATABASE_URL"])
    # An empty database gets the demo county, so a newcomer sees a living system at once.
    subprocess.run([sys.executable, "-m", "fupin.cli", "seed-demo"], env=env, check=True)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fupin_api.asgi:app", "--host", settings.api_host, "--port",
         str(settings.api_port), "--no-access-log"], env=env,
    )]
    if with_worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "arq", "fupin_worker.main.WorkerSettings"], env=env))
    typer.echo(f"API on http://{settings.api_host}:{settings.api_port} (docs at /docs); Ctrl-C stops everything")
    try:
        while all(p.poll() is None for p in procs):
            try:
                procs[0].wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)


if __name__ == "__main__":
    app()
