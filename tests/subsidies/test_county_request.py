"""A county-level call starts a whole county's quarter (issue 14): one request, every township's run, the
same runs and keys the per-township request and the cron create, so nothing is paid twice."""

from __future__ import annotations

from sqlalchemy import func, select

from fupin.auth.roles import Role
from fupin.subsidies.models import SubsidyPayout
from fupin_worker import runner
from tests.factories import token_for
from tests.subsidies.test_cycle import Q3, arrange, assert_ledger_ok


async def _county(client, headers, county: str, phase: str, quarter: str = Q3):
    return await client.post("/subsidy-runs/county", headers=headers,
                             json={"county_code": county, "quarter": quarter, "phase": phase})


async def test_one_call_runs_every_township_and_settles_as_the_per_township_calls_do(
    client, owner_sessionmaker, app_sessionmaker, test_settings
):
    sm = owner_sessionmaker
    county, town, loans, _ = await arrange(sm)
    other = county.townships[1]
    fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
    # One township's allocation was requested by hand already: the county call leaves it alone.
    r = await client.post("/subsidy-runs", headers=fin,
                          json={"township_code": other, "quarter": Q3, "phase": "allocation"})
    assert r.status_code == 202, r.text

    r = await _county(client, fin, county.code, "allocation")
    assert r.status_code == 202, r.text
    body = r.json()
    assert [x["area_code"] for x in body["requested"]] == [town]
    assert [x["area_code"] for x in body["already_requested"]] == [other]
    jobs_url = r.headers["location"]
    assert jobs_url.startswith("/jobs?request_id=")
    listed = (await client.get(jobs_url, headers=fin)).json()["items"]
    assert [j["key"] for j in listed] == [body["requested"][0]["job_key"]]

    for phase in ("allocation", "preallocation", "settlement"):
        if phase != "allocation":
            r = await _county(client, fin, county.code, phase)
            assert r.status_code == 202, r.text
            assert sorted(x["area_code"] for x in r.json()["requested"]) == sorted(county.townships)
        assert await runner.execute(app_sessionmaker, test_settings, f"subsidy.{phase}:{town}:{Q3}") == "done"
    async with sm() as s:
        paid = await s.scalar(select(func.count()).select_from(SubsidyPayout)
                              .where(SubsidyPayout.loan_id.in_(list(loans.values()))))
    assert paid == 4  # loans A, B, D and F, as in the per-township cycle test
    await assert_ledger_ok(client, sm, test_settings, county.code)

    r = await _county(client, fin, county.code, "settlement")
    assert r.status_code == 409
    assert r.json()["code"] == "subsidy.run_exists"


async def test_refusals_scope_and_quarter(client, owner_sessionmaker, test_settings):
    county, town, _, _ = await arrange(owner_sessionmaker)
    township_finance = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=town)
    r = await _county(client, township_finance, county.code, "allocation")
    assert r.status_code == 404  # a township user cannot start its county
    office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
    assert (await _county(client, office, county.code, "allocation")).status_code == 403
    fin = await token_for(owner_sessionmaker, test_settings, role=Role.finance_bureau, area_code=county.code)
    r = await _county(client, fin, county.code, "settlement", quarter="2099Q1")
    assert r.status_code == 422
    assert r.json()["code"] == "subsidy.quarter_not_ended"
    r = await _county(client, fin, town, "allocation")
    assert r.status_code == 422  # a township code is not a county code (the pattern)
