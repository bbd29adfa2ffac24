"""The household workflow says what the caller may do next (issue 14), by role and status, on the detail
(hot read and write answers alike) and in the answer to each step; every listed step is then accepted."""

from __future__ import annotations

import pytest

from fupin.auth.roles import Role
from fupin.households import rules
from tests.factories import new_county
from tests.households.test_registry import DATES, STEPS, Actors, create


@pytest.fixture
async def county(owner_sessionmaker):
    return await new_county(owner_sessionmaker, townships=1, villages=1)


async def test_allowed_actions_follow_role_and_status_through_identification(
    client, owner_sessionmaker, test_settings, county
):
    actors = Actors(owner_sessionmaker, test_settings, county)
    village = county.villages[county.townships[0]][0]
    created = await create(client, await actors(Role.village_committee), village)
    assert created["allowed_actions"] == ["surveyed", "rejected"]  # a write's answer carries them too
    url = f"/households/{created['id']}"

    async def allowed(role: Role) -> list[str]:
        r = await client.get(url, headers=await actors(role))
        assert r.status_code == 200, r.text
        return r.json()["allowed_actions"]

    assert await allowed(Role.township_station) == []
    for i, (step, role, extra) in enumerate(STEPS):
        assert step in await allowed(role)
        r = await client.post(f"{url}/transitions", headers=await actors(role),
                              json={"to": step, "on": DATES[step], **extra})
        assert r.status_code == 201, r.text
        following = STEPS[i + 1] if i + 1 < len(STEPS) else None
        expected_next = [following[0], "rejected"] if following and following[1] is role else []
        if step == "registered":
            expected_next = ["exited", "removed"]
        assert r.json()["allowed_actions"] == expected_next, step
    assert await allowed(Role.poverty_office) == ["exited", "removed"]
    assert await allowed(Role.village_committee) == []
    history = (await client.get(f"{url}/history", headers=await actors(Role.poverty_office))).json()["items"]
    assert all(e["allowed_actions"] == [] for e in history)


class TestRule:
    def test_each_status_offers_exactly_the_steps_check_transition_accepts_for_the_owner(self):
        for current in rules.STATUSES:
            for role in Role:
                for target in rules.allowed_steps(current, role):
                    rules.check_transition(current, target)  # raises if offered wrongly
                    assert rules.step_owner(target, current) is role

    def test_closed_cases_offer_nothing_and_exits_can_return(self):
        for role in Role:
            assert rules.allowed_steps("removed", role) == []
            assert rules.allowed_steps("rejected", role) == []
        assert rules.allowed_steps("exited", Role.poverty_office) == ["returned_to_poverty", "removed"]
        assert rules.allowed_steps("returned_to_poverty", Role.poverty_office) == ["exited", "removed"]
        assert rules.allowed_steps("township_reviewed", Role.poverty_office) == ["county_announced", "rejected"]
