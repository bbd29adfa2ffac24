"""Cron entry for the loans domain: mark overdue loans once a day (Asia/Shanghai date)."""

from __future__ import annotations

from datetime import datetime

from fupin.loans import jobs as loan_jobs
from fupin_worker.schedule import Due


def daily_overdue(now: datetime) -> list[Due]:
    day = now.date().isoformat()
    return [Due(loan_jobs.MARK_OVERDUE, f"{loan_jobs.MARK_OVERDUE}:{day}", {"as_of": day})]
