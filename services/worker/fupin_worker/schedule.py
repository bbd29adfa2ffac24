"""Scheduled runs. A tick computes which keyed runs should exist by now and inserts the missing ones, so a
cron missed while no worker was up is caught up at the next tick, and several workers ticking at once still
create each run once (the key is unique). Which kinds are scheduled, and when, is one table:
`fupin_worker.kinds.KINDS` (its `SCHEDULE` is what the sweeper ticks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs


@dataclass(frozen=True)
class Due:
    kind: str
    key: str
    args: dict[str, Any]
    area_code: str = ""  # scheduled runs are platform-wide fan-outs unless an entry says otherwise


@dataclass(frozen=True)
class Entry:
    name: str
    due: Callable[[datetime], list[Due]]


async def ensure_due_runs(session: AsyncSession, schedule: Sequence[Entry], *, now: datetime, tz: str) -> list[str]:
    """Insert every run `schedule` says should exist by `now`; returns the keys created."""
    local = now.astimezone(ZoneInfo(tz))
    created: list[str] = []
    for entry in schedule:
        for due in entry.due(local):
            _, new = await jobs.request_job(
                session, kind=due.kind, key=due.key, area_code=due.area_code, args=due.args, requested_by="cron"
            )
            if new:
                created.append(due.key)
    return created
