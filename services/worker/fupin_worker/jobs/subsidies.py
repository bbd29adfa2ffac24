"""Cron entries of the quarterly subsidy cycle. Each tick yields the county-wide fan-out runs that should
exist by now; the key makes each once, and a tick after downtime catches up a missed start.

- from the first day of a quarter: allocation, then pre-allocation, for that quarter;
- from the 1st of the next quarter (the 1st–5th window): settlement of the quarter just ended.
"""

from __future__ import annotations

from datetime import datetime

from fupin.calendar import Quarter
from fupin.subsidies.jobs import PLAN
from fupin_worker.schedule import Due


def _plan(phase: str, quarter: Quarter) -> Due:
    return Due(PLAN, f"{PLAN}.{phase}:{quarter}", {"phase": phase, "quarter": str(quarter)})


def quarter_start_due(now: datetime) -> list[Due]:
    q = Quarter.of(now.date())
    return [_plan("allocation", q), _plan("preallocation", q)]


def settlement_due(now: datetime) -> list[Due]:
    return [_plan("settlement", Quarter.of(now.date()).prev())]
