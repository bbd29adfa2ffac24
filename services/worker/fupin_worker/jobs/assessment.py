"""Cron entries of the repayment-rate assessment: monthly monitoring (year to date through the last
finished month) and the annual assessment on January 5 for the previous year. Each tick asks for the
period's fan-out run; its key is unique, so every tick after the first is a no-op."""

from __future__ import annotations

from datetime import datetime

from fupin.assessment.jobs import SCHEDULE
from fupin_worker.schedule import Due


def monthly_due(now: datetime) -> list[Due]:
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    period = f"{year:04d}-{month:02d}"
    return [Due(SCHEDULE, f"{SCHEDULE}:monthly:{period}", {"which": "monthly", "period": period})]


def annual_due(now: datetime) -> list[Due]:
    if (now.month, now.day) < (1, 5):
        return []
    year = now.year - 1
    return [Due(SCHEDULE, f"{SCHEDULE}:annual:{year:04d}", {"which": "annual", "period": str(year)})]
