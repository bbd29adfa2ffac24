"""Business time: quarters, Asia/Shanghai days, and working days on the Chinese statutory calendar
(including make-up working weekends, 调休). A year the calendar does not know is an explicit error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from fupin.errors import RuleViolation

SHANGHAI = ZoneInfo("Asia/Shanghai")
_QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _QUARTER_RE.match(text)
        if not m:
            raise RuleViolation("period.invalid_quarter", f"{text!r} is not a quarter like 2026Q3", f"{text!r} 不是季度格式")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> date:
        """Last day of the quarter (inclusive)."""
        return self.next().start - timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.q == 4 else Quarter(self.year, self.q + 1)

    def prev(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"


def business_date(at: datetime | None = None) -> date:
    """The calendar day in Asia/Shanghai: 2026-03-31 23:59+08:00 is still Q1."""
    return (at or datetime.now(UTC)).astimezone(SHANGHAI).date()


def package_knows(year: int) -> bool:
    """Whether the chinese-calendar package has that year's statutory holidays."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:  # the package's way of saying "year not covered"
        return False
    return True


def _check_known(day: date) -> None:
    if not package_knows(day.year):
        raise RuleViolation(
            "calendar.unknown_year",
            f"the holiday calendar does not cover {day.year}; an administrator must add that year's holidays",
            f"节假日日历未包含 {day.year} 年,请管理员补充",
        )


def is_working_day(day: date, extra_holidays: frozenset[date] = frozenset(),
                   extra_workdays: frozenset[date] = frozenset()) -> bool:
    if day in extra_workdays:
        return True
    if day in extra_holidays:
        return False
    _check_known(day)
    return bool(chinese_calendar.is_workday(day))


def add_working_days(start: date, days: int, extra_holidays: frozenset[date] = frozenset(),
                     extra_workdays: frozenset[date] = frozenset()) -> date:
    """The date `days` working days after `start` (start itself not counted): the review deadline."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current, extra_holidays, extra_workdays):
            remaining -= 1
    return current
