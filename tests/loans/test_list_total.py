"""`?total=true` on the application list counts what the filters match (issue 14)."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.loans.factories import make_household
from tests.loans.test_applications import submit


async def test_loan_applications_total_follows_the_filters(client, owner_sessionmaker, world):
    for _ in range(3):
        hh, _ = await make_household(owner_sessionmaker, world.village)
        assert (await submit(client, world, hh)).status_code == 201
    hdr = world.h[Role.village_committee]
    r = await client.get("/loan-applications", headers=hdr, params={"total": "true", "limit": 1})
    assert r.json()["total"] == 3
    r = await client.get("/loan-applications", headers=hdr, params={"total": "true", "status": "approved"})
    assert r.json() == {"items": [], "next_cursor": None, "total": 0}
