"""Projects say what the caller may do next (issue 14): the lifecycle moves `may_move` admits, only for roles
with `project.transition`, on the project and in the answer to each transition."""

from __future__ import annotations

from fupin.auth.roles import Role
from fupin.projects import rules
from fupin.projects.schemas import Status
from tests.factories import new_county, token_for
from tests.projects.factories import advance_to, create_project, move


async def test_allowed_actions_follow_status_and_role(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    township = county.townships[0]
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
    finance = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=township)
    p = await create_project(client, station, township)
    assert p["allowed_actions"] == ["in_library", "suspended", "cancelled"]
    url = f"/projects/{p['id']}"
    assert (await client.get(url, headers=finance)).json()["allowed_actions"] == []  # reads, may not move it

    await advance_to(client, station, p["id"], "approved")
    r = await move(client, station, p["id"], "suspended", reason="资金未到位")
    assert r.status_code == 201, r.text
    assert r.json()["allowed_actions"] == ["approved", "cancelled"]  # resume to where it was, or cancel
    assert (await client.get(url, headers=station)).json()["allowed_actions"] == ["approved", "cancelled"]
    listed = (await client.get("/projects", headers=station, params={"area_code": township})).json()["items"]
    assert next(x for x in listed if x["id"] == p["id"])["allowed_actions"] == ["approved", "cancelled"]
    r = await move(client, station, p["id"], "cancelled", reason="群众不同意")
    assert r.json()["allowed_actions"] == []


def test_every_offered_move_is_one_may_move_admits_and_none_is_missing():
    for current in Status:
        for suspended_from in (None, Status.approved):
            offered = rules.allowed_moves(current, suspended_from)
            admitted = [to for to in Status if rules.may_move(current, to, suspended_from)]
            assert sorted(offered) == sorted(admitted), (current, suspended_from)
