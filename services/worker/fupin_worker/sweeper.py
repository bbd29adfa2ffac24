"""Delivers what arq may have lost: runs never enqueued, queued too long, abandoned by a dead worker,
or failed transiently. Runs at worker start-up and on cron."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin import jobs
from fupin.settings import Settings
from fupin_worker.schedule import ensure_due_runs

log = logging.getLogger("fupin.worker")


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, redis: Any) -> list[str]:
    async with sessionmaker() as session, session.begin():
        await ensure_due_runs(session, now=datetime.now(UTC), tz=settings.timezone)
        runs = await jobs.runs_to_sweep(session, stale_after=timedelta(seconds=settings.job_stale_seconds))
        keys = []
        for run in runs:
            # A fresh arq id each time: arq refuses an id whose earlier result it still keeps.
            job_id = run.key if run.enqueues == 0 else f"{run.key}#{run.enqueues}"
            await redis.enqueue_job("run_job", run.key, _job_id=job_id)
            keys.append(run.key)
        await jobs.mark_enqueued(session, keys)
    if keys:
        log.info("sweeper enqueued %d runs", len(keys))
    return keys
