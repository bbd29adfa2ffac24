"""Every table is placed for Citus (fupin.distribution), and every area-owned one carries its county."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.distribution import PLACEMENT, Distributed, Reference, misplaced, public_tables, unclassified
from fupin.models import metadata


async def test_every_table_is_placed_and_carries_its_distribution_column(
    owner_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with owner_sessionmaker() as s:
        tables = await public_tables(await s.connection())
    # A table another revision adds must be declared in PLACEMENT, or `fupin distribute` refuses to run.
    assert unclassified(tables) == []
    assert misplaced(tables) == []
    assert set(PLACEMENT) <= set(tables), "PLACEMENT names a table that does not exist"


def test_area_owned_tables_are_distributed_unless_a_reason_is_given() -> None:
    for name, table in metadata.tables.items():
        placement = PLACEMENT.get(name)
        assert placement is not None, f"{name} is not placed in fupin.distribution.PLACEMENT"
        if isinstance(placement, Reference):
            assert placement.why, name
        else:
            assert isinstance(placement, Distributed)
            assert placement.column in table.c, f"{name} lacks its distribution column {placement.column}"


async def test_an_insert_that_names_no_county_gets_it_from_the_area(
    owner_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    import uuid
    from decimal import Decimal

    from sqlalchemy import insert

    from fupin.households.models import Household
    from tests.factories import new_county

    county = await new_county(owner_sessionmaker)
    village = county.villages[county.townships[0]][0]
    hid = uuid.uuid4()
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(insert(Household).values(
            id=hid, area_code=village, household_no=f"D{hid.hex[:8]}", head_name="张三", address="",
            category="general", main_cause="lack_capital", secondary_causes=[], income_per_capita=Decimal("3000.00"),
            family_planning=False, veteran=False, status="registered",
        ))
        s.add(Household(
            area_code=village, household_no=f"E{hid.hex[:8]}", head_name="李四", address="", category="general",
            main_cause="lack_capital", secondary_causes=[], income_per_capita=Decimal("3000.00"),
            family_planning=False, veteran=False, status="registered",
        ))
        await s.flush()
        counties = (await s.scalars(text("SELECT county FROM household WHERE area_code = :v"), {"v": village})).all()
    assert counties == [village[:6], village[:6]]


async def test_a_county_scoped_session_names_its_county_in_orm_statements(
    owner_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The owner (a superuser here) bypasses RLS, so only the routing criterion hides the other county's row."""
    import uuid
    from decimal import Decimal

    from sqlalchemy import select, update

    from fupin.db import ALL_AREAS, route_to_county, set_area_scope
    from fupin.households.models import Household
    from tests.factories import new_county

    a, b = await new_county(owner_sessionmaker), await new_county(owner_sessionmaker)
    village_b = b.villages[b.townships[0]][0]
    hid = uuid.uuid4()
    async with owner_sessionmaker() as s, s.begin():
        s.add(Household(
            id=hid, area_code=village_b, household_no=f"F{hid.hex[:8]}", head_name="赵六", address="",
            category="general", main_cause="lack_capital", secondary_causes=[], income_per_capita=Decimal("1.00"),
            family_planning=False, veteran=False, status="registered",
        ))
    async with owner_sessionmaker() as s, s.begin():
        await set_area_scope(s, a.code[:6] + "%")
        assert await s.scalar(select(Household).where(Household.id == hid)) is None
        moved = await s.execute(update(Household).where(Household.id == hid).values(head_name="x"))
        assert moved.rowcount == 0  # type: ignore[attr-defined]
        await set_area_scope(s, ALL_AREAS)  # no county: no criterion
        assert (await s.scalar(select(Household).where(Household.id == hid))) is not None
    async with owner_sessionmaker() as s, s.begin():
        await set_area_scope(s, ALL_AREAS)
        route_to_county(s, a.code)  # a county job: scope '%', routed to its county
        assert await s.scalar(select(Household).where(Household.id == hid)) is None
        route_to_county(s, village_b)
        assert (await s.scalar(select(Household).where(Household.id == hid))) is not None
