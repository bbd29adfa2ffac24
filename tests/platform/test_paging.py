"""Lists page one way: keyset cursors that reach page 2 and beyond without skipping or repeating a row."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select

from fupin.areas.models import Area
from fupin.auth.roles import Role
from fupin.paging import after, decode_cursor, encode_cursor, page
from tests.factories import new_county, new_user, token_for


async def test_users_page_by_cursor_to_the_end(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    for _ in range(4):
        await new_user(owner_sessionmaker, role=Role.village_committee, area_code=county.villages[county.townships[0]][0])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/users", headers=hdr, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        seen += [u["username"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3  # 5 users (admin + 4) at 2 a page
    assert len(seen) == 5
    assert seen == sorted(seen)
    assert len(set(seen)) == 5

    r = await client.get("/users", headers=hdr, params={"cursor": "not-a-cursor"})
    assert r.status_code == 422
    assert r.json()["code"] == "request.bad_cursor"
    r = await client.get("/users", headers=hdr, params={"limit": 501})
    assert r.status_code == 422


async def test_mixed_direction_order_pages_exactly(owner_sessionmaker):
    """An order with a descending key (population desc, code asc), with ties, pages like one big query."""
    county = await new_county(owner_sessionmaker, townships=2, villages=3, population=7)
    async with owner_sessionmaker() as session, session.begin():
        villages = [v for vs in county.villages.values() for v in vs]
        for i, code in enumerate(villages):
            (await session.get(Area, code)).population = i % 3  # ties on population
    order = (Area.population.desc(), Area.code)
    base = select(Area).where(Area.code.in_(villages))
    async with owner_sessionmaker() as session:
        whole = [a.code for a in (await session.scalars(base.order_by(*order))).all()]
        got: list[str] = []
        cursor = None
        while True:
            rows, cursor = page((await session.scalars(after(base, order, cursor, 4))).all(), 4,
                                lambda a: (a.population, a.code))
            got += [a.code for a in rows]
            if cursor is None:
                break
    assert got == whole
    assert len(whole) == 6


def test_cursor_round_trips_typed_values():
    import uuid
    from datetime import date, datetime
    from decimal import Decimal

    values = [date(2026, 6, 1), datetime(2026, 6, 1, 9, tzinfo=UTC), uuid.uuid4(), Decimal("30000.00"),
              True, 7, "张三"]
    assert decode_cursor(encode_cursor(values), len(values)) == values
