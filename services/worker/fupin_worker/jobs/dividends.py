"""Cron entry of the dividends domain: the daily maturity sweep."""

from __future__ import annotations

from datetime import datetime

from fupin.dividends.service import MATURE_KIND
from fupin_worker.schedule import Due


def daily_maturity(now: datetime) -> list[Due]:
    """One maturity sweep per business day; the key carries the day so a missed day is caught up once."""
    day = now.date().isoformat()
    return [Due(MATURE_KIND, f"{MATURE_KIND}:{day}", {"on": day})]
