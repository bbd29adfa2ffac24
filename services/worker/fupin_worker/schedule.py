"""Every scheduled run in one table. A tick computes which keyed runs should exist by now and inserts
the missing ones, so a cron missed while no worker was up is caught up at the next tick, and several
workers ticking at once still create each run once (the key is unique)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.platform_jobs import AUDIT_VERIFY


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


def _daily_audit_verify(now: datetime) -> list[Due]:
    return [Due(AUDIT_VERIFY, f"{AUDIT_VERIFY}:daily:{now.date().isoformat()}", {})]


SCHEDULE: list[Entry] = [
    Entry("audit chain verification, daily", _daily_audit_verify),
]


def register(entry: Entry) -> None:
    SCHEDULE.append(entry)


async def ensure_due_runs(session: AsyncSession, *, now: datetime, tz: str) -> list[str]:
    """Insert every run the schedule says should exist by `now`; returns the keys created."""
    local = now.astimezone(ZoneInfo(tz))
    created: list[str] = []
    for entry in SCHEDULE:
        for due in entry.due(local):
            _, new = await jobs.request_job(
                session, kind=due.kind, key=due.key, area_code=due.area_code, args=due.args, requested_by="cron"
            )
            if new:
                created.append(due.key)
    return created
