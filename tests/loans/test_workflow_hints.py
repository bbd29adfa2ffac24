"""Workflow objects say what the caller may do next, and step responses carry the deadlines in force."""

from __future__ import annotations

from fupin.auth.roles import Role as R
from tests.loans.factories import make_household
from tests.loans.test_applications import step, submit


async def test_allowed_actions_follow_role_and_status_and_steps_return_deadlines(client, owner_sessionmaker, world):
    hh, _ = await make_household(owner_sessionmaker, world.village)
    app = (await submit(client, world, hh, amount="30000.00")).json()
    url = f"/loan-applications/{app['id']}"

    async def allowed(role):
        r = await client.get(url, headers=world.h[role])
        assert r.status_code == 200, r.text
        return r.json()["allowed_actions"]

    assert await allowed(R.village_committee) == ["village_review", "village_reject"]
    assert await allowed(R.township_station) == []

    r = await step(client, world, app["id"], "village_review", R.village_committee, "2026-09-30")
    assert r.status_code == 201, r.text
    assert r.json()["station_due_on"] is not None
    assert r.json()["allowed_actions"] == []  # the village's part is done
    assert await allowed(R.township_station) == ["station_recommend", "station_reject"]

    r = await step(client, world, app["id"], "station_recommend", R.township_station, "2026-10-09")
    assert r.status_code == 201, r.text
    assert r.json()["coop_due_on"] is not None
    # 30,000 is above the county-approval threshold: the coop may assess or reject, not approve yet.
    assert await allowed(R.credit_coop) == ["coop_assess", "reject"]
    assert await allowed(R.poverty_office) == ["poverty_office_approve"]
    assert (await step(client, world, app["id"], "poverty_office_approve", R.poverty_office,
                       "2026-10-10")).status_code == 201
    assert await allowed(R.poverty_office) == []
    assert (await step(client, world, app["id"], "coop_assess", R.credit_coop, "2026-10-12")).status_code == 201
    assert (await step(client, world, app["id"], "credit_union_approve", R.credit_union, "2026-10-12")).status_code == 201
    assert await allowed(R.credit_coop) == ["approve", "reject"]
    assert (await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")).status_code == 201
    assert await allowed(R.credit_coop) == []


async def test_a_reviewed_certificate_offers_issue_to_the_coop_only(client, owner_sessionmaker, world):
    hh, _ = await make_household(owner_sessionmaker, world.village, certificate=False)
    r = await client.post("/loan-certificates", headers=world.h[R.village_committee], json={
        "household_id": str(hh), "credit_rating": "good", "opinion": "收入稳定", "on": "2026-09-01"})
    assert r.status_code == 201, r.text
    assert r.json()["allowed_actions"] == []  # the village's review is done
    url = f"/loan-certificates/{r.json()['id']}"
    assert (await client.get(url, headers=world.h[R.credit_coop])).json()["allowed_actions"] == ["issue"]
    listed = (await client.get("/loan-certificates", headers=world.h[R.credit_coop])).json()["items"]
    assert next(c for c in listed if c["id"] == r.json()["id"])["allowed_actions"] == ["issue"]
    r = await client.post(f"{url}/issue", headers=world.h[R.credit_coop], json={"number": "DKZ-9", "on": "2026-09-02"})
    assert r.status_code == 200, r.text
    assert r.json()["allowed_actions"] == []
