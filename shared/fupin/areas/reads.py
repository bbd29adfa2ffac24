"""Hot reads of areas (`fupin.fastread`): prepared statements shaped like `AreaRead`, the same rows and
order as `service.get_area` / `service.list_areas`."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import Select, bindparam, select

from fupin.areas.models import Area
from fupin.areas.schemas import AreaRead
from fupin.areas.scope import principal_bounds, visible
from fupin.auth.principal import Principal
from fupin.errors import not_found
from fupin.fastread import Prepared, Variants, record

FIELDS = tuple(AreaRead.model_fields)
_A = Area.__table__
_BY_CODE = Prepared(select(*(_A.c[f] for f in FIELDS)).where(_A.c.code == bindparam("code")))


async def area(conn: asyncpg.Connection, *, principal: Principal, code: str) -> dict[str, Any]:
    row = await _BY_CODE.fetchrow(conn, code=code)
    if row is None or not visible(principal, row["code"]):
        raise not_found("area")
    return record(row, FIELDS)


def _page(parent: bool, level: bool, after: bool) -> Select[Any]:
    stmt = select(*(_A.c[f] for f in FIELDS)).where(_A.c.code >= bindparam("lo"), _A.c.code < bindparam("hi"))
    if parent:
        stmt = stmt.where(_A.c.parent_code == bindparam("parent"))
    if level:
        stmt = stmt.where(_A.c.level == bindparam("level"))
    if after:
        stmt = stmt.where(_A.c.code > bindparam("after"))
    return stmt.order_by(_A.c.code).limit(bindparam("limit"))


_PAGES = Variants(_page)


async def page(
    conn: asyncpg.Connection, *, principal: Principal, parent: str | None, level: str | None, limit: int,
    after: str | None,
) -> dict[str, Any]:
    lo, hi = principal_bounds(principal)
    rows = await _PAGES(parent is not None, level is not None, after is not None).fetch(
        conn, lo=lo, hi=hi, parent=parent, level=level, after=after, limit=limit)
    items = [record(r, FIELDS) for r in rows]
    return {"items": items, "next_cursor": items[-1]["code"] if len(items) == limit else None}
