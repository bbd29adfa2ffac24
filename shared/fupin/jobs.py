"""Background work is a keyed row in PostgreSQL; arq only delivers the key.

A service asks for work with `request_job` inside its own transaction (an outbox): if the request
rolls back, no job exists. The worker claims the row with `FOR UPDATE SKIP LOCKED` and commits the
job's effects together with `status = done`, so a rerun of the same key finds it done and pays
nothing twice; a worker killed mid-job leaves its transaction rolled back and the row unlocked,
which is how the sweeper tells an abandoned run from a running one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    case,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from fupin import logs
from fupin.areas.scope import within
from fupin.base import Base, UUIDPk
from fupin.db import ALL_AREAS, scope_statement


class JobStatus(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"  # transient failure: the sweeper retries
    dead = "dead"  # failed for good (a domain refusal or too many attempts); needs a person
    waiting = "waiting"  # its input is not ready: delivered again when the run `waiting_for` is done


class NotReady(Exception):
    """Raised by a handler whose input does not exist yet. The run becomes `waiting` (no attempt spent,
    nothing for a person to do) and is delivered again when the run keyed `waiting_for` is done."""

    def __init__(self, reason: str, *, waiting_for: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.waiting_for = waiting_for


class JobRun(UUIDPk, Base):
    __tablename__ = "job_run"
    __table_args__ = (
        Index("ix_job_run_request_id", "request_id", postgresql_where=text("request_id IS NOT NULL")),
        Index("ix_job_run_waiting_for", "waiting_for", postgresql_where=text("status = 'waiting'")),
    )

    kind: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    # The area whose data the run touches ('' = platform-wide): scopes /jobs, RLS and confined workers.
    area_code: Mapped[str] = mapped_column(String(12), server_default="", default="")
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueues: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Only while `waiting`: why, and the key of the run whose completion releases this one.
    waiting_reason: Mapped[str | None] = mapped_column(Text)
    waiting_for: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_by: Mapped[str] = mapped_column(String(64), default="system")
    # The API request whose transaction created the run; the worker logs it with every line of the run.
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobProgress(Base):
    """How far a running job has come. Written on a connection of its own, so it is visible while the job's
    transaction (which commits its effects only at the end) is still open."""

    __tablename__ = "job_progress"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    done: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


MAX_ATTEMPTS = 8


def job_dumps(obj: Any) -> bytes:
    """The queue's wire format on both ends (API and worker): JSON, never pickle; Decimal as string."""
    import json

    return json.dumps(obj, default=str).encode()


def job_loads(raw: bytes) -> Any:
    import json

    return json.loads(raw)

# What does one kind of job: the worker's table (fupin_worker.kinds) maps each kind to one of these.
Handler = Callable[[AsyncSession, JobRun], Awaitable[dict[str, Any]]]


async def request_job(
    session: AsyncSession,
    *,
    kind: str,
    key: str,
    area_code: str,
    args: dict[str, Any] | None = None,
    requested_by: str = "system",
) -> tuple[JobRun, bool]:
    """Insert the run row if its key is new; returns (row, created). The caller's commit publishes it.

    `area_code` is the area whose data the run touches ('' for platform-wide runs); who may see the run
    and which confined worker may execute it follow from it. The run remembers the API request it was
    created in (`logs.current_request_id()`), if any."""
    stmt = (
        insert(JobRun)
        .values(id=uuid.uuid4(), kind=kind, key=key, area_code=area_code, args=args or {}, requested_by=requested_by,
                request_id=logs.current_request_id())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(JobRun.id)
    )
    new_id = await session.scalar(stmt)
    run = await session.scalar(select(JobRun).where(JobRun.key == key))
    assert run is not None
    if new_id is not None:
        session.info.setdefault("requested_jobs", []).append(key)
    return run, new_id is not None


async def report_progress(session: AsyncSession, run: JobRun, *, done: int, total: int | None) -> None:
    """Publish progress now, outside the job's transaction (a rerun after a crash simply overwrites it)."""
    bind = session.bind
    assert isinstance(bind, AsyncEngine)
    stmt = insert(JobProgress).values(key=run.key, area_code=run.area_code, done=done, total=total)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"done": done, "total": total,
                                                                     "updated_at": func.now()})
    async with bind.begin() as conn:
        await conn.execute(scope_statement(ALL_AREAS))
        await conn.execute(stmt)


@dataclass(frozen=True)
class RunSummary:
    kind: str
    area_code: str
    status: str
    attempts: int
    request_id: str | None
    last_error: str | None
    waiting_reason: str | None
    waiting_for: str | None


async def run_summary(session: AsyncSession, key: str) -> RunSummary | None:
    """What the worker's log line says about a run (no lock: a reading, not a claim; the caller sets the scope)."""
    row = (await session.execute(
        select(JobRun.kind, JobRun.area_code, JobRun.status, JobRun.attempts, JobRun.request_id, JobRun.last_error,
               JobRun.waiting_reason, JobRun.waiting_for)
        .where(JobRun.key == key)
    )).first()
    return RunSummary(*row) if row is not None else None


def requested_keys(session: AsyncSession) -> list[str]:
    keys: list[str] = session.info.pop("requested_jobs", [])
    return keys


def arq_job_id(key: str, enqueues: int) -> str:
    """A fresh arq id for each delivery: arq refuses an id whose earlier result it still keeps."""
    return key if enqueues == 0 else f"{key}#{enqueues}"


async def enqueue_counts(session: AsyncSession, keys: list[str]) -> dict[str, int]:
    rows = await session.execute(select(JobRun.key, JobRun.enqueues).where(JobRun.key.in_(keys)))
    return {key: int(n) for key, n in rows.all()}


async def record_waiting(session: AsyncSession, run: JobRun, *, reason: str, waiting_for: str | None) -> bool:
    """Park `run` until the run keyed `waiting_for` is done; the delivery spends no attempt.

    Returns True when that run is already done (it finished while this one looked): the run is then
    pending again at once, to be delivered now rather than wait for a release that already happened."""
    run.attempts = max(run.attempts - 1, 0)
    run.finished_at = datetime.now(UTC)
    awaited = await session.scalar(select(JobRun.status).where(JobRun.key == waiting_for)) if waiting_for else None
    if awaited == JobStatus.done.value:
        run.status, run.waiting_reason, run.waiting_for, run.enqueued_at = JobStatus.pending.value, None, None, None
        return True
    run.status, run.waiting_reason, run.waiting_for = JobStatus.waiting.value, reason, waiting_for
    return False


async def release_waiting(session: AsyncSession, done_key: str) -> list[str]:
    """In the transaction that marks `done_key` done: the runs waiting for it become pending; returns
    their keys, for the caller to deliver after its commit (the sweeper delivers them otherwise)."""
    rows = await session.execute(
        update(JobRun)
        .where(JobRun.status == JobStatus.waiting.value, JobRun.waiting_for == done_key)
        .values(status=JobStatus.pending.value, waiting_reason=None, waiting_for=None, enqueued_at=None)
        .returning(JobRun.key)
    )
    return list(rows.scalars().all())


async def mark_enqueued(session: AsyncSession, keys: list[str]) -> None:
    if keys:
        await session.execute(
            update(JobRun)
            .where(JobRun.key.in_(keys))
            .values(enqueued_at=func.now(), enqueues=JobRun.enqueues + 1)
        )


@dataclass(frozen=True)
class RunStat:
    kind: str
    status: str
    count: int
    oldest_age_seconds: float


# Every status but done: what operations watch. Done runs are history (the worker counts executions).
OPEN_STATUSES = [s.value for s in JobStatus if s is not JobStatus.done]


async def run_stats(session: AsyncSession) -> list[RunStat]:
    """Open runs per (kind, status) with the age of the oldest, measured on the database clock.

    One GROUP BY over the `status` index: done runs, nearly all of the table, are never read. The caller
    sets the scope (row-level security: the system scope sees every area's runs)."""
    since = case((JobRun.status == JobStatus.running.value, JobRun.started_at), else_=JobRun.created_at)
    rows = await session.execute(
        select(JobRun.kind, JobRun.status, func.count(), func.extract("epoch", func.now() - func.min(since)))
        .where(JobRun.status.in_(OPEN_STATUSES))
        .group_by(JobRun.kind, JobRun.status)
    )
    return [RunStat(kind, status, int(n), float(age or 0)) for kind, status, n, age in rows.all()]


def in_worker_area(worker_area: str) -> ColumnElement[bool]:
    """The runs a worker confined to `worker_area` may sweep and execute ('' = every run).

    A confined worker takes only runs inside its area, never platform-wide ones, so a county's worker
    (or a test's) never executes another county's work."""
    if not worker_area:
        return true()
    return within(JobRun.area_code, worker_area)


def abandoned(stale_after: timedelta) -> ColumnElement[bool]:
    """A `running` run whose worker is gone. A live worker holds the row lock for the whole run, so
    callers combine this with SKIP LOCKED; the age only covers the instant between claim and lock."""
    return (JobRun.status == JobStatus.running.value) & (
        JobRun.started_at < func.now() - stale_after
    )


async def runs_to_sweep(
    session: AsyncSession, *, stale_after: timedelta, worker_area: str = "", limit: int = 500
) -> list[JobRun]:
    """Runs arq may have lost: never enqueued, queued too long, abandoned mid-run, or failed transiently;
    and waiting runs whose awaited run is done (a release that raced the wait) or that await nothing
    named (they are tried again like a transient failure).

    SKIP LOCKED leaves out the rows a live worker is executing right now.
    """
    cutoff = func.now() - stale_after
    awaited = aliased(JobRun)
    awaited_done = (
        select(awaited.id)
        .where(awaited.key == JobRun.waiting_for, awaited.status == JobStatus.done.value)
        .exists()
    )
    stmt = (
        select(JobRun)
        .where(
            or_(
                (JobRun.status == JobStatus.pending.value)
                & (JobRun.enqueued_at.is_(None) | (JobRun.enqueued_at < cutoff)),
                abandoned(stale_after),
                (JobRun.status == JobStatus.failed.value)
                & (JobRun.enqueued_at.is_(None) | (JobRun.enqueued_at < cutoff)),
                (JobRun.status == JobStatus.waiting.value)
                & (awaited_done | (JobRun.waiting_for.is_(None) & (JobRun.enqueued_at.is_(None) | (JobRun.enqueued_at < cutoff)))),
            ),
            in_worker_area(worker_area),
        )
        .order_by(JobRun.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(stmt)).all())
