"""Delivers what arq may have lost: runs never enqueued, queued too long, abandoned by a dead worker,
or failed transiently. Runs at worker start-up and every `sweeper_interval_seconds`.

Recovery bound after a worker is killed mid-run: its connection dies with it, PostgreSQL rolls the
run's transaction back and frees the row lock, and the run is re-delivered by the first sweep after
`job_stale_seconds` have passed since it started — so within job_stale_seconds + sweeper_interval_seconds
(plus the job's own run time) of the kill. tests/platform/test_worker.py measures it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin import jobs
from fupin.db import ALL_AREAS, set_area_scope
from fupin.settings import Settings
from fupin_worker import kinds
from fupin_worker.schedule import ensure_due_runs

log = logging.getLogger("fupin.worker")


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, redis: Any) -> list[str]:
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        if not settings.worker_area:
            # The schedule is platform-wide (its fan-outs create every county's runs): only an
            # unconfined worker ticks it; a confined worker delivers the runs of its own area.
            await ensure_due_runs(session, kinds.SCHEDULE, now=datetime.now(UTC), tz=settings.timezone)
        runs = await jobs.runs_to_sweep(
            session, stale_after=timedelta(seconds=settings.job_stale_seconds), worker_area=settings.worker_area
        )
        keys = []
        for run in runs:
            # A fresh arq id each time: arq refuses an id whose earlier result it still keeps.
            job_id = jobs.arq_job_id(run.key, run.enqueues)
            await redis.enqueue_job("run_job", run.key, _job_id=job_id)
            keys.append(run.key)
        await jobs.mark_enqueued(session, keys)
    if keys:
        log.info("sweeper enqueued %d runs", len(keys))
    return keys


def cron_fields(interval_seconds: int) -> tuple[set[int] | None, set[int]]:
    """(minute, second) arq cron fields firing every `interval_seconds`: a divisor of a minute, or whole
    minutes dividing an hour. minute None means every minute."""
    if 0 < interval_seconds < 60 and 60 % interval_seconds == 0:
        return None, set(range(0, 60, interval_seconds))
    minutes, rest = divmod(interval_seconds, 60)
    if rest == 0 and 0 < minutes <= 60 and 60 % minutes == 0:
        return set(range(0, 60, minutes)), {0}
    raise ValueError(f"sweeper_interval_seconds={interval_seconds}: use a divisor of 60 s or of 60 min")
