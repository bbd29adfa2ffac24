"""Pure calculations for pairing reports: periods and exact rates."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from fupin.calendar import Quarter
from fupin.errors import RuleViolation

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
RATE_PLACES = Decimal("0.000001")
PERCENT_PLACES = Decimal("0.01")


def _invalid(text: str) -> RuleViolation:
    return RuleViolation("pairing.invalid_period", f"{text!r} is not a period like 2026-08 or 2026Q3",
                         f"{text!r} 不是有效期间(如 2026-08 或 2026Q3)")


def parse_period(text: str) -> tuple[date, date]:
    """'2026-08' → Aug 1..31; '2026Q3' → Jul 1..Sep 30 (both inclusive); years 1900–2100."""
    try:
        start, end = _parse(text)
    except ValueError:
        raise _invalid(text) from None
    if not 1900 <= start.year <= 2100:
        raise _invalid(text)
    return start, end


def _parse(text: str) -> tuple[date, date]:
    if m := _MONTH_RE.match(text):
        start = date(int(m.group(1)), int(m.group(2)), 1)
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return start, nxt - timedelta(days=1)
    try:
        q = Quarter.parse(text)
    except RuleViolation:
        raise _invalid(text) from None
    return q.start, q.end


def rate(numerator: int, denominator: int) -> tuple[Decimal | None, Decimal | None]:
    """(rate to 6 places, percent to 2 places), both half-up from the exact quotient; None for 0/0."""
    if denominator == 0:
        return None, None
    exact = Decimal(numerator) / Decimal(denominator)
    return exact.quantize(RATE_PLACES, ROUND_HALF_UP), (exact * 100).quantize(PERCENT_PLACES, ROUND_HALF_UP)
