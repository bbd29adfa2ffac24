"""On the Citus cluster only (`make test-distributed`): co-location by county, the RLS scope reaching the
workers, and a province-wide aggregate across workers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import exc, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.db import set_area_scope
from fupin.distribution import PLACEMENT, Distributed
from fupin.households.models import Household
from tests.conftest import DISTRIBUTED

pytestmark = pytest.mark.skipif(not DISTRIBUTED, reason="needs the Citus cluster (make test-distributed)")


def _household(area_code: str, tag: str = "C") -> dict[str, object]:
    return {
        "id": uuid.uuid4(), "area_code": area_code, "household_no": f"{tag}{uuid.uuid4().hex[:10]}", "head_name": "王五",
        "address": "", "category": "general", "main_cause": "lack_capital", "secondary_causes": [],
        "income_per_capita": Decimal("3000.00"), "family_planning": False, "veteran": False, "status": "registered",
    }


async def _node_of(s: AsyncSession, table: str, county: str) -> int:
    return int(await s.scalar(text(
        "SELECT p.nodeport FROM pg_dist_shard_placement p "
        "WHERE p.shardid = get_shard_id_for_distribution_column(CAST(:t AS regclass), CAST(:c AS text))"
    ), {"t": table, "c": county}))


async def test_one_countys_rows_of_every_distributed_table_live_on_one_worker(
    owner_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    distributed = sorted(t for t, p in PLACEMENT.items() if isinstance(p, Distributed))
    async with owner_sessionmaker() as s:
        placed = set((await s.scalars(text(
            "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'h'"))).all())
        assert placed == set(distributed)
        groups = set((await s.scalars(text(
            "SELECT colocationid FROM pg_dist_partition WHERE partmethod = 'h'"))).all())
        assert len(groups) == 1, "every distributed table is co-located with household"
        nodes_seen: set[int] = set()
        for n in range(40):
            county = f"52{n:02d}23"
            nodes = {await _node_of(s, t, county) for t in distributed}
            assert len(nodes) == 1, f"county {county} is split over {nodes}"
            nodes_seen |= nodes
        assert len(nodes_seen) == 2, "counties are spread over both workers"
        refs = set((await s.scalars(text(
            "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'n'"))).all())
        assert refs == {t for t, p in PLACEMENT.items() if not isinstance(p, Distributed)}


async def test_the_scope_reaches_the_worker_which_refuses_a_foreign_row(
    app_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    own, foreign = "530123100200", "530124100200"
    tag = f"R{uuid.uuid4().hex[:8]}"
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, own[:6] + "%")
        # Accepted on the worker only because the scope arrived there (an unset scope denies every row).
        await s.execute(insert(Household).values(**_household(own, tag)))
        seen = await s.scalar(text("SELECT count(*) FROM household WHERE household_no LIKE :t"), {"t": tag + "%"})
        assert seen == 1
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, own[:6] + "%")
        with pytest.raises(exc.DBAPIError, match="row-level security"):
            await s.execute(insert(Household).values(**_household(foreign)))
        await s.rollback()


async def test_a_province_wide_count_is_right_across_workers(
    owner_sessionmaker: async_sessionmaker[AsyncSession], app_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    province = "54"
    counties = [f"{province}{n:02d}23" for n in range(1, 9)]
    expected = {c: i + 1 for i, c in enumerate(counties)}
    tag = f"P{uuid.uuid4().hex[:8]}"
    async with owner_sessionmaker() as s, s.begin():
        assert len({await _node_of(s, "household", c) for c in counties}) == 2
        for c, k in expected.items():
            await s.execute(insert(Household), [_household(c + "100200", tag) for _ in range(k)])
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, province + "%")
        rows = (await s.execute(text(
            "SELECT county, count(*) FROM household WHERE area_code LIKE :p AND household_no LIKE :t GROUP BY county"
        ), {"p": province + "%", "t": tag + "%"})).all()
    assert dict(rows) == expected
