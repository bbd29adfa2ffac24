"""A list's optional total (issue 14): `?total=true` adds the count over all pages; without it the envelope
is exactly `{items, next_cursor}`."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import new_county, new_user, token_for


async def test_total_counts_every_page_and_is_absent_unless_asked(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    for _ in range(4):
        await new_user(owner_sessionmaker, role=Role.cadre, area_code=county.villages[county.townships[0]][0])
    first = (await client.get("/users", headers=admin, params={"limit": 2, "total": "true"})).json()
    assert first["total"] == 5  # the admin and four cadres
    assert len(first["items"]) == 2
    seen = [u["username"] for u in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        more = (await client.get("/users", headers=admin, params={"limit": 2, "cursor": cursor})).json()
        assert set(more) == {"items", "next_cursor"}  # no total unless asked
        seen += [u["username"] for u in more["items"]]
        cursor = more["next_cursor"]
    assert len(seen) == len(set(seen)) == first["total"]
