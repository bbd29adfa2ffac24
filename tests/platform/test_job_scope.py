"""Job runs carry their area: /jobs shows a caller only the runs of their own area, and RLS hides the rest."""

from __future__ import annotations

from sqlalchemy import select

from fupin import jobs
from fupin.auth.roles import Role
from fupin.db import set_area_scope
from tests.factories import new_county, token_for


async def test_jobs_list_and_get_are_scoped_to_the_callers_area(client, owner_sessionmaker, test_settings):
    a = await new_county(owner_sessionmaker, townships=1, villages=1)
    b = await new_county(owner_sessionmaker, townships=1, villages=1)
    admin_a = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=a.code)
    admin_b = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=b.code)
    township_admin_b = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=b.townships[0])
    run_a = (await client.post("/jobs/audit-verify", headers=admin_a)).json()
    run_b = (await client.post("/jobs/audit-verify", headers=admin_b)).json()

    assert (await client.get(f"/jobs/{run_a['id']}", headers=admin_a)).status_code == 200
    foreign = await client.get(f"/jobs/{run_a['id']}", headers=admin_b)
    assert foreign.status_code == 404
    assert run_a["key"] not in foreign.text
    listed = (await client.get("/jobs", headers=admin_b, params={"limit": 200})).json()["items"]
    assert run_b["id"] in {r["id"] for r in listed}
    assert all(r["area_code"].startswith(b.code[:6]) for r in listed)
    # A township user under county B sees none of the county-level run (it lies above them).
    assert (await client.get(f"/jobs/{run_b['id']}", headers=township_admin_b)).status_code == 404


async def test_job_run_rows_are_invisible_outside_the_scope_even_without_a_filter(owner_sessionmaker, app_sessionmaker):
    a = await new_county(owner_sessionmaker, townships=1, villages=1)
    b = await new_county(owner_sessionmaker, townships=1, villages=1)
    key = f"audit.verify:manual:rls-{a.code}"
    async with owner_sessionmaker() as s, s.begin():
        await jobs.request_job(s, kind="audit.verify", key=key, area_code=a.code)
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, b.code[:6] + "%")
        assert await s.scalar(select(jobs.JobRun.id).where(jobs.JobRun.key == key)) is None
    async with app_sessionmaker() as s, s.begin():  # no scope set at all: deny by default
        assert await s.scalar(select(jobs.JobRun.id).where(jobs.JobRun.key == key)) is None
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, a.code[:6] + "%")
        assert await s.scalar(select(jobs.JobRun.id).where(jobs.JobRun.key == key)) is not None
