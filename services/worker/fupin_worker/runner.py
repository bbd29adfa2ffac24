"""The only code that changes JobRun.status: claim, run the domain handler, commit effects with `done`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin import jobs
from fupin.db import ALL_AREAS, route_to_county, set_area_scope
from fupin.errors import DomainError
from fupin.settings import Settings
from fupin_worker import kinds

log = logging.getLogger("fupin.worker")


Deliver = Callable[[list[str]], Awaitable[None]]


async def execute(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, key: str, *, deliver: Deliver | None = None
) -> str:
    """Run the job `key` once. Returns what happened: done, already_done, busy, unknown, foreign, waiting,
    failed, dead. `deliver` hands runs that became pending (released from waiting) to the queue after commit."""
    stale = timedelta(seconds=settings.job_stale_seconds)
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        # SKIP LOCKED: a delivery that arrives while another worker executes the run (and so holds
        # its row lock) neither waits nor counts as an attempt. A `running` row is claimable again
        # only once abandoned, so two deliveries racing between claim and lock count one attempt.
        claimable = (
            select(jobs.JobRun.id)
            .where(
                jobs.JobRun.key == key,
                jobs.JobRun.status.in_([jobs.JobStatus.pending.value, jobs.JobStatus.failed.value,
                                        jobs.JobStatus.waiting.value])
                | jobs.abandoned(stale),
                jobs.in_worker_area(settings.worker_area),
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        marked = await session.execute(
            update(jobs.JobRun)
            .where(jobs.JobRun.id == claimable)
            .values(attempts=jobs.JobRun.attempts + 1, status=jobs.JobStatus.running.value,
                    started_at=func.now())
            .returning(jobs.JobRun.attempts)
        )
        claimed_attempt = marked.scalar()
        if claimed_attempt is None:
            row = (await session.execute(
                select(jobs.JobRun.status, jobs.in_worker_area(settings.worker_area)).where(jobs.JobRun.key == key)
            )).first()
            if row is None:
                return "unknown"
            status, mine = row
            if not mine:
                return "foreign"  # another area's worker (or an unconfined one) delivers it
            if status in (jobs.JobStatus.done.value, jobs.JobStatus.dead.value):
                return "already_done" if status == jobs.JobStatus.done.value else "dead"
            return "busy"  # another delivery holds the run right now
    try:
        async with sessionmaker() as session, session.begin():
            await set_area_scope(session, ALL_AREAS)
            # The run is ours (claimed above), so wait for its lock rather than skip it: a racing
            # delivery's claim attempt can hold the row lock for a moment even though it did not claim
            # (PostgreSQL keeps the lock of a row that fails the recheck), and skipping here would leave
            # the run `running` with nobody executing it until it is abandoned.
            run = await session.scalar(
                select(jobs.JobRun).where(jobs.JobRun.key == key).with_for_update()
            )
            if run is None or run.status != jobs.JobStatus.running.value or run.attempts != claimed_attempt:
                return "busy"  # reclaimed as abandoned by another worker in the meantime
            route_to_county(session, run.area_code)
            result = await kinds.HANDLERS[run.kind](session, run)
            if settings.fault_sleep_seconds:
                # Test hook: a window in which a kill leaves the effects uncommitted.
                await asyncio.sleep(settings.fault_sleep_seconds)
            run.status = jobs.JobStatus.done.value
            run.result = result
            run.last_error = None
            run.waiting_reason = run.waiting_for = None
            run.finished_at = datetime.now(UTC)
            released = await jobs.release_waiting(session, key)
        log.info("job %s done: %s", key, result)
        if released and deliver is not None:
            await deliver(released)
        return "done"
    except jobs.NotReady as exc:
        if await _record_waiting(sessionmaker, key, exc) and deliver is not None:
            await deliver([key])
        return "waiting"
    except DomainError as exc:
        await _record_failure(sessionmaker, key, f"{exc.code}: {exc.message_en}", permanent=True)
        return "dead"
    except Exception as exc:
        log.exception("job %s failed", key)
        await _record_failure(sessionmaker, key, repr(exc)[:2000], permanent=False)
        return "failed"


async def _record_failure(sessionmaker: async_sessionmaker[AsyncSession], key: str, error: str, *, permanent: bool) -> None:
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        run = await session.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key).with_for_update())
        if run is None or run.status == jobs.JobStatus.done.value:
            return
        dead = permanent or run.attempts >= jobs.MAX_ATTEMPTS
        run.status = (jobs.JobStatus.dead if dead else jobs.JobStatus.failed).value
        run.last_error = error
        run.finished_at = datetime.now(UTC)


async def _record_waiting(sessionmaker: async_sessionmaker[AsyncSession], key: str, exc: jobs.NotReady) -> bool:
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        run = await session.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key).with_for_update())
        if run is None or run.status == jobs.JobStatus.done.value:
            return False
        return await jobs.record_waiting(session, run, reason=exc.reason, waiting_for=exc.waiting_for)


def summary(result: Any) -> str:
    return str(result)
