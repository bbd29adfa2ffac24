"""Keyset (cursor) pagination for any list: one helper so every collection pages the same way (issue 14).

A cursor is the sort key of the last row of a page, opaque to clients (URL-safe base64 of JSON). The next page
is the rows strictly after it in the same order, so a page never skips or repeats a row when rows are added
before it (offsets do both), and the database seeks through an index instead of counting rows to skip.
Every order ends with a unique column (the id) so the key is total.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import desc_op

from fupin.errors import RuleViolation

T = TypeVar("T")
S = TypeVar("S", bound=Select)  # any row shape
MAX_LIMIT = 500


def _bad_cursor() -> RuleViolation:
    return RuleViolation("request.bad_cursor", "the cursor is not one this list returned", "分页游标无效")


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["m", str(value)]
    if isinstance(value, int):
        return ["i", value]
    return ["s", str(value)]


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "n": lambda _: None, "b": bool, "u": uuid.UUID, "t": datetime.fromisoformat, "d": date.fromisoformat,
    "m": Decimal, "i": int, "s": str,
}


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_tag(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tagged = json.loads(raw)
        values = [_UNTAG[t](v) for t, v in tagged]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    if len(values) != width:
        raise _bad_cursor()
    return values


def _column(key: ColumnElement[Any] | UnaryExpression[Any]) -> tuple[ColumnElement[Any], bool]:
    """(column, descending) of an ORDER BY term."""
    if isinstance(key, UnaryExpression) and key.modifier is desc_op:
        return key.element, True
    if isinstance(key, UnaryExpression):
        return key.element, False
    return key, False


def after(stmt: S, order: Sequence[Any], cursor: str | None, limit: int) -> S:
    """`stmt` ordered by `order` (columns, `.desc()` allowed), from the row after `cursor`, one row more than
    `limit` so the caller can tell whether another page follows."""
    stmt = stmt.order_by(*order).limit(limit + 1)
    if cursor is None:
        return stmt
    values = decode_cursor(cursor, len(order))
    terms = [_column(k) for k in order]
    branches = []
    for i, (col, descending) in enumerate(terms):
        if values[i] is None:
            continue  # NULL sort keys are not used in our orders; never seek past one
        equal = [c == v for (c, _), v in zip(terms[:i], values[:i], strict=True)]
        branches.append(and_(*equal, col < values[i] if descending else col > values[i]))
    return stmt.where(or_(*branches) if branches else false())


def page(rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]]) -> tuple[list[T], str | None]:
    """The page's rows and the cursor of the next page (None on the last page)."""
    items = list(rows[:limit])
    return items, (encode_cursor(key(items[-1])) if len(rows) > limit and items else None)


async def count(session: AsyncSession, stmt: Select[Any]) -> int:
    """How many rows the filtered list `stmt` (before `after`) matches: a list's optional `total`. One COUNT
    over the same scoped statement, run only when the client asks for it (`?total=true`)."""
    return int(await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
