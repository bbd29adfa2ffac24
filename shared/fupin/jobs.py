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
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, String, Text, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from fupin.areas.scope import within
from fupin.base import Base, UUIDPk


class JobStatus(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"  # transient failure: the sweeper retries
    dead = "dead"  # failed for good (a domain refusal or too many attempts); needs a person


class JobRun(UUIDPk, Base):
    __tablename__ = "job_run"

    kind: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    # The area whose data the run touches ('' = platform-wide): scopes /jobs, RLS and confined workers.
    area_code: Mapped[str] = mapped_column(String(12), server_default="", default="")
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueues: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


MAX_ATTEMPTS = 8


def job_dumps(obj: Any) -> bytes:
    """The queue's wire format on both ends (API and worker): JSON, never pickle; Decimal as string."""
    import json

    return json.dumps(obj, default=str).encode()


def job_loads(raw: bytes) -> Any:
    import json

    return json.loads(raw)

Handler = Callable[[AsyncSession, JobRun], Awaitable[dict[str, Any]]]
_HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the domain function that does a kind of job (`domain.verb`)."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def handler_for(kind: str) -> Handler:
    return _HANDLERS[kind]


def known_kinds() -> list[str]:
    return sorted(_HANDLERS)


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
    and which confined worker may execute it follow from it."""
    stmt = (
        insert(JobRun)
        .values(id=uuid.uuid4(), kind=kind, key=key, area_code=area_code, args=args or {}, requested_by=requested_by)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(JobRun.id)
    )
    new_id = await session.scalar(stmt)
    run = await session.scalar(select(JobRun).where(JobRun.key == key))
    assert run is not None
    if new_id is not None:
        session.info.setdefault("requested_jobs", []).append(key)
    return run, new_id is not None


def requested_keys(session: AsyncSession) -> list[str]:
    keys: list[str] = session.info.pop("requested_jobs", [])
    return keys


async def mark_enqueued(session: AsyncSession, keys: list[str]) -> None:
    if keys:
        await session.execute(
            update(JobRun)
            .where(JobRun.key.in_(keys))
            .values(enqueued_at=func.now(), enqueues=JobRun.enqueues + 1)
        )


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
    """Runs arq may have lost: never enqueued, queued too long, abandoned mid-run, or failed transiently.

    SKIP LOCKED leaves out the rows a live worker is executing right now.
    """
    cutoff = func.now() - stale_after
    stmt = (
        select(JobRun)
        .where(
            or_(
                (JobRun.status == JobStatus.pending.value)
                & (JobRun.enqueued_at.is_(None) | (JobRun.enqueued_at < cutoff)),
                abandoned(stale_after),
                (JobRun.status == JobStatus.failed.value)
                & (JobRun.enqueued_at.is_(None) | (JobRun.enqueued_at < cutoff)),
            ),
            in_worker_area(worker_area),
        )
        .order_by(JobRun.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(stmt)).all())
