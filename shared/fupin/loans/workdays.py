"""Working days for review deadlines: the chinese-calendar package, extended by the admins' holiday table.

A year the package does not know counts only once an administrator declared it complete; otherwise the
deadline is refused with `calendar.unknown_year` (never a silent Monday–Friday guess)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import calendar
from fupin.loans.models import LoanHoliday, LoanHolidayYear


async def extras(session: AsyncSession, years: range) -> tuple[frozenset[date], frozenset[date]]:
    """(extra holidays, extra workdays) for `years`; declared years are classified day by day."""
    rows = (
        await session.execute(
            select(LoanHoliday.day, LoanHoliday.kind).where(
                LoanHoliday.day >= date(years.start, 1, 1), LoanHoliday.day < date(years.stop, 1, 1)
            )
        )
    ).all()
    listed: dict[date, str] = {d: k for d, k in rows}  # noqa: C416
    declared = set(
        (await session.scalars(select(LoanHolidayYear.year).where(LoanHolidayYear.year.in_(list(years))))).all()
    )
    holidays = {d for d, k in listed.items() if k == "holiday"}
    workdays = {d for d, k in listed.items() if k == "workday"}
    for year in declared:
        if calendar.package_knows(year):
            continue
        day = date(year, 1, 1)
        while day.year == year:
            if day not in listed:
                (workdays if day.weekday() < 5 else holidays).add(day)
            day += timedelta(days=1)
    return frozenset(holidays), frozenset(workdays)


async def add_working_days(session: AsyncSession, start: date, days: int) -> date:
    """The deadline `days` working days after `start`."""
    hol, work = await extras(session, range(start.year, start.year + 2))
    return calendar.add_working_days(start, days, hol, work)
