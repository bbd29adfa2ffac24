"""Dividend jobs for the worker: the run handlers (imported for registration) and the daily maturity cron."""

from __future__ import annotations

from datetime import datetime

from fupin.dividends import jobs as dividend_jobs  # noqa: F401  (registers dividend.pay / dividend.mature)
from fupin.dividends.service import MATURE_KIND
from fupin_worker.schedule import Due, Entry, register


def daily_maturity(now: datetime) -> list[Due]:
    """One maturity sweep per business day; the key carries the day so a missed day is caught up once."""
    day = now.date().isoformat()
    return [Due(MATURE_KIND, f"{MATURE_KIND}:{day}", {"on": day})]


register(Entry("dividend holdings maturity, daily", daily_maturity))
