"""Hot reads of households (`fupin.fastread`): one statement each, rows shaped like `HouseholdRead` /
`HouseholdSummary` — the same fields, order, masking and cursor as `service.read_household` and
`queries.list_households`, which stay the ORM path (writes answer with them)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy import Select, and_, bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from fupin.areas.scope import principal_bounds, visible
from fupin.auth.principal import Principal
from fupin.errors import RuleViolation, not_found
from fupin.fastread import Prepared, Variants, fetch_statement, record
from fupin.households import queries, rules
from fupin.households.models import Household, Member
from fupin.households.schemas import HouseholdSummary, MemberRead

SUMMARY = tuple(HouseholdSummary.model_fields)
MEMBER = tuple(MemberRead.model_fields)
_H = Household.__table__
_M = Member.__table__

_BY_ID = Prepared(
    select(*(_H.c[f] for f in SUMMARY), *(_M.c[f].label(f"m_{f}") for f in MEMBER))
    # the county too: on Citus the join then stays on the worker holding the household
    .select_from(_H.outerjoin(_M, and_(_M.c.household_id == _H.c.id, _M.c.county == _H.c.county)))
    .where(_H.c.id == bindparam("id", type_=PgUUID(as_uuid=True)))
    .order_by(*queries.MEMBER_ORDER)
)


async def household(conn: asyncpg.Connection, *, principal: Principal, household_id: uuid.UUID) -> dict[str, Any]:
    rows = await _BY_ID.fetch(conn, id=household_id)
    if not rows or not visible(principal, rows[0]["area_code"]):
        raise not_found("household")
    out = record(rows[0], SUMMARY)
    out["members"] = [_member(r, principal) for r in rows if r["m_id"] is not None]
    out["allowed_actions"] = rules.allowed_steps(out["status"], principal.role)
    return out


def _member(row: asyncpg.Record, principal: Principal) -> dict[str, Any]:
    out = {f: row[f"m_{f}"] for f in MEMBER}
    out["id_number"] = rules.shown_id(out["id_number"], principal.role)
    return out


def _page(key: str, desc: bool, after: bool) -> Select[Any]:
    col = _H.c[key]
    stmt = select(*(_H.c[f] for f in SUMMARY)).where(
        _H.c.area_code >= bindparam("lo"), _H.c.area_code < bindparam("hi"),
        _H.c.area_code >= bindparam("area_lo"), _H.c.area_code < bindparam("area_hi"),
    )
    if after:
        pair = tuple_(col, _H.c.id)
        cursor = tuple_(bindparam("c_value", type_=col.type), bindparam("c_id", type_=PgUUID(as_uuid=True)))
        stmt = stmt.where(pair < cursor if desc else pair > cursor)
    order = (col.desc(), _H.c.id.desc()) if desc else (col.asc(), _H.c.id.asc())
    return stmt.order_by(*order).limit(bindparam("limit"))


_PAGES = Variants(_page)


async def page(
    conn: asyncpg.Connection, *, principal: Principal, filters: queries.Filters, sort: str, cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """A page of `GET /households`: the area-only shape as a prepared statement, any other filter through
    the ORM path's own statement (`queries.filtered`)."""
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in queries.SORTS:
        raise RuleViolation("request.bad_sort", f"cannot sort by {key}", "不支持的排序字段")
    after = queries.decode_cursor(cursor, key) if cursor else None
    value, rid = after or (None, None)
    if queries.Filters(area=filters.area) == filters:
        lo, hi = principal_bounds(principal)
        if filters.area and not visible(principal, filters.area):
            raise not_found("area")
        area_lo, area_hi = queries.area_bounds(filters.area)
        rows = await _PAGES(key, desc, cursor is not None).fetch(
            conn, lo=lo, hi=hi, area_lo=area_lo, area_hi=area_hi, c_value=value, c_id=rid, limit=limit + 1)
    else:
        rows = await fetch_statement(conn, queries.page_statement(
            principal, filters, key=key, desc=desc, after=after, limit=limit))
    items = [record(r, SUMMARY) for r in rows[:limit]]
    nxt = queries.encode_cursor(items[-1][key], items[-1]["id"]) if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}
