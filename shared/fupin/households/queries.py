"""Heavy reads: filtered, sorted, cursor-paged household lists, export rows and area statistics."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.areas.models import Area
from fupin.areas.scope import bounds, scope_pattern, scoped, visible, within
from fupin.auth.principal import Principal
from fupin.base import same_county
from fupin.db import set_area_scope
from fupin.errors import RuleViolation, not_found
from fupin.households import rules
from fupin.households.models import Household, Member
from fupin.households.schemas import HouseholdStats
from fupin.loans.models import Loan

SORTS: dict[str, Any] = {
    "created_at": Household.created_at,
    "head_name": Household.head_name,
    "household_no": Household.household_no,
    "income_per_capita": Household.income_per_capita,
}


# Members in the order every read shows them: the head first, then by age; id breaks ties (twins).
MEMBER_ORDER = (Member.relation != rules.HEAD, Member.birth_date, Member.id)


@dataclass(frozen=True)
class Filters:
    area: str | None = None
    status: str | None = None
    category: str | None = None
    cause: str | None = None
    exit_year: int | None = None
    labour: str | None = None
    has_active_loan: bool | None = None
    q: str | None = None


def _bad_cursor() -> RuleViolation:
    return RuleViolation("request.bad_cursor", "the cursor is not valid for this sort", "分页游标无效")


def encode_cursor(value: Any, row_id: uuid.UUID) -> str:
    v = value.isoformat() if isinstance(value, datetime) else str(value)
    return base64.urlsafe_b64encode(json.dumps([v, str(row_id)]).encode()).decode()


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    try:
        v, rid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value: Any = v
        if sort == "created_at":
            value = datetime.fromisoformat(v)
        elif sort == "income_per_capita":
            value = Decimal(v)
        return value, uuid.UUID(rid)
    except (ValueError, TypeError, ArithmeticError):
        raise _bad_cursor() from None


def filtered(principal: Principal, f: Filters) -> Select[Household]:
    stmt = scoped(select(Household), principal, Household.area_code)
    if f.area:
        if not visible(principal, f.area):
            raise not_found("area")
        stmt = stmt.where(within(Household.area_code, f.area))
    if f.status:
        stmt = stmt.where(Household.status == f.status)
    if f.category:
        stmt = stmt.where(Household.category == f.category)
    if f.cause:
        stmt = stmt.where(or_(Household.main_cause == f.cause, Household.secondary_causes.contains([f.cause])))
    if f.exit_year is not None:
        stmt = stmt.where(Household.year_exited == f.exit_year)
    if f.labour:
        stmt = stmt.where(exists().where(
            Member.household_id == Household.id, same_county(Member, Household), Member.active,
            Member.labour == f.labour))
    if f.has_active_loan is not None:
        loan = exists().where(Loan.household_id == Household.id, same_county(Loan, Household), Loan.outstanding > 0)
        stmt = stmt.where(loan if f.has_active_loan else ~loan)
    if f.q:
        q = f.q.strip()
        conds: list[ColumnElement[bool]] = [Household.head_name.contains(q, autoescape=True)]
        number = q[:-1] + "X" if q.endswith("x") else q
        if len(number) == 18:
            conds.append(exists().where(Member.household_id == Household.id, same_county(Member, Household),
                                        Member.id_number == number))
        stmt = stmt.where(or_(*conds))
    return stmt


def area_bounds(area: str | None) -> tuple[str, str]:
    return bounds(area)


def page_statement(
    principal: Principal, filters: Filters, *, key: str, desc: bool, after: tuple[Any, uuid.UUID] | None, limit: int
) -> Select[Household]:
    """One page (plus one row, to know whether another follows) sorted by `key`, then id."""
    col = SORTS[key]
    stmt = filtered(principal, filters)
    if after is not None:
        pair = tuple_(col, Household.id)
        stmt = stmt.where(pair < tuple_(*after) if desc else pair > tuple_(*after))
    order = (col.desc(), Household.id.desc()) if desc else (col.asc(), Household.id.asc())
    return stmt.order_by(*order).limit(limit + 1)


async def list_households(
    session: AsyncSession, *, principal: Principal, filters: Filters, sort: str, cursor: str | None, limit: int
) -> tuple[list[Household], str | None]:
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise RuleViolation("request.bad_sort", f"cannot sort by {key}", "不支持的排序字段")
    after = decode_cursor(cursor, key) if cursor else None
    stmt = page_statement(principal, filters, key=key, desc=desc, after=after, limit=limit)
    rows = list((await session.scalars(stmt)).all())
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = encode_cursor(getattr(rows[-1], key), rows[-1].id)
    return rows, nxt


async def members_by_household(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Member]]:
    out: dict[uuid.UUID, list[Member]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = select(Member).where(Member.household_id.in_(ids)).order_by(Member.household_id, *MEMBER_ORDER)
    for m in await session.scalars(stmt):
        out[m.household_id].append(m)
    return out


EXPORT_BATCH = 2_000  # rows per fetch of an export's cursor (and per chunk of a streamed CSV)


# The columns an exported row shows (`importer.roster_values`): one flat row serves as both the household
# and the member (their names do not collide), read as Core rows — building ORM objects cost ~10× the rest.
_EXPORT_HOUSEHOLD = ("household_no", "area_code", "address", "category", "main_cause", "secondary_causes",
                     "income_per_capita", "family_planning", "veteran", "year_identified", "status")
_EXPORT_MEMBER = ("name", "id_number", "relation", "labour", "full_civil_capacity", "in_school", "health",
                  "disability")


def export_statement(principal: Principal, filters: Filters) -> Select[Any]:
    """One row per active member of each matching household, in roster order (IDs are masked by the writer)."""
    sub = filtered(principal, filters).with_only_columns(Household.id).scalar_subquery()
    h, m = Household.__table__.c, Member.__table__.c
    return (
        select(*(h[c] for c in _EXPORT_HOUSEHOLD), *(m[c] for c in _EXPORT_MEMBER), m.id.label("member_id"))
        .select_from(Household.__table__.join(Member.__table__, and_(m.household_id == h.id, m.active, m.county == h.county)))
        .where(h.id.in_(sub))
        .order_by(h.area_code, h.household_no, m.relation != rules.HEAD, m.birth_date, m.id)
    )


async def refuse_past(session: AsyncSession, *, principal: Principal, filters: Filters, rows: int, why: str,
                      why_zh: str) -> None:
    """Refuse (413 `export.too_large`) an export of more than `rows` member rows — said, never cut short.
    Counts at most `rows + 1`, so the check costs little whatever the match."""
    stmt = export_statement(principal, filters).with_only_columns(Member.__table__.c.id).order_by(None).limit(rows + 1)
    found = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    if (found or 0) > rows:
        raise RuleViolation(
            "export.too_large", f"more than {rows:,} rows match: {why}", f"符合条件的记录超过 {rows:,} 行:{why_zh}",
            status=413, extra={"limit": rows},
        )


async def export_batches(
    sessionmaker: async_sessionmaker[AsyncSession], *, principal: Principal, filters: Filters, batch: int | None = None,
) -> AsyncIterator[list[tuple[Any, Any]]]:
    """The export's rows in batches from a server-side cursor, in a read-only transaction of their own
    scoped to the caller (RLS) — so a streamed answer can keep reading after the request's own session
    has closed, and memory stays flat whatever the count."""
    stmt = export_statement(principal, filters).execution_options(yield_per=batch or EXPORT_BATCH)
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, scope_pattern(principal))
        result = await session.stream(stmt)
        async for part in result.partitions():
            yield [(row, row) for row in part]


async def household_stats(session: AsyncSession, *, principal: Principal, area: str) -> HouseholdStats:
    """Counts by status, category and cause, and poverty incidence (贫困发生率) for an area.

    incidence = active members of registered-not-exited households ÷ Σ population of the villages.
    """
    if not visible(principal, area) or await session.get(Area, area) is None:
        raise not_found("area")
    base = scoped(select(Household), principal, Household.area_code).where(within(Household.area_code, area))
    hs = base.subquery()

    async def counts(col: Any) -> dict[str, int]:
        rows = await session.execute(select(col, func.count()).select_from(hs).group_by(col))
        return {str(k): int(n) for k, n in rows.all()}

    by_status = await counts(hs.c.status)
    by_category = await counts(hs.c.category)
    by_cause = await counts(hs.c.main_cause)
    poor = await session.scalar(
        select(func.count()).select_from(Member)
        .join(hs, and_(hs.c.id == Member.household_id, same_county(Member, hs)))
        .where(Member.active, hs.c.status.in_(rules.POOR))
    ) or 0
    population = await session.scalar(
        select(func.coalesce(func.sum(Area.population), 0))
        .where(Area.level == "village", within(Area.code, area))
    ) or 0
    ratio = (Decimal(poor) / Decimal(population)) if population else Decimal(0)
    return HouseholdStats(
        area_code=area, households=sum(by_status.values()), by_status=by_status, by_category=by_category,
        by_cause=by_cause, poor_persons=int(poor), population=int(population),
        incidence=str(ratio.quantize(Decimal("0.000001"), ROUND_HALF_UP)),
        incidence_percent=str((ratio * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)),
    )
