from __future__ import annotations

from fupin.auth.roles import Role
from fupin.ledger import service as ledger
from tests.factories import new_county, token_for
from tests.projects.factories import advance_to, create_project, make_household


async def _funded(client, owner_sessionmaker, headers, area, village, *, year, budget, moves):
    p = await create_project(client, headers, area, year=year, budget=budget)
    hid = await make_household(owner_sessionmaker, village=village)
    r = await client.post(f"/projects/{p['id']}/beneficiaries", headers=headers, json={
        "households": [{"household_id": str(hid), "kind": "infrastructure", "amount": "0.00"}]})
    assert r.status_code == 201, r.text
    await advance_to(client, headers, p["id"], "in_progress")
    for movement, source, amount in moves:
        r = await client.post(f"/projects/{p['id']}/funds", headers=headers, json={
            "movement": movement, "source": source, "amount": amount, "effective_on": "2026-05-30"})
        assert r.status_code == 201, r.text
    return p["id"]


class TestFundUtilisationReport:
    async def test_hand_computed_figures(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        t1, t2 = county.townships
        admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        # A (t1, 2026): central 300,000 received in full, 30,019 used (002 L23) → 10.006…% → 10.01
        a = await _funded(client, owner_sessionmaker, admin, t1, county.villages[t1][0], year=2026,
                          budget={"central": "300000.00", "county": "50000.00"},
                          moves=[("allocation", "central", "300000.00"), ("disbursement", "central", "30019.00"),
                                 ("allocation", "county", "20000.00")])
        # B (t2, 2026): county 100,000; 100,000 allocated, 66,666.67 disbursed → 66.67%
        b = await _funded(client, owner_sessionmaker, admin, t2, county.villages[t2][0], year=2026,
                          budget={"county": "100000.00"},
                          moves=[("allocation", "county", "100000.00"), ("disbursement", "county", "66666.67")])
        # C (t1, 2025): central 10,000; nothing moved → 0.00%
        c = await _funded(client, owner_sessionmaker, admin, t1, county.villages[t1][1], year=2025,
                          budget={"central": "10000.00"}, moves=[])

        async def report(**params):
            r = await client.get("/reports/project-funds", headers=admin, params=params)
            assert r.status_code == 200, r.text
            return r.json()["items"]

        rows = await report(year=2026, group_by="project_source")
        got = {(r["project_id"], r["source"]): (r["budget"], r["allocated"], r["disbursed"], r["used_pct"]) for r in rows}
        assert got[(a, "central")] == ("300000.00", "300000.00", "30019.00", "10.01")
        assert got[(a, "county")] == ("50000.00", "20000.00", "0.00", "0.00")
        assert got[(a, "provincial")] == ("0.00", "0.00", "0.00", None)
        assert got[(b, "county")] == ("100000.00", "100000.00", "66666.67", "66.67")
        assert len(rows) == 10  # 2 projects × 5 sources

        by_project = {r["project_id"]: r for r in await report(year=2026, group_by="project")}
        # A: 30,019 / 350,000 = 8.5768…% → 8.58
        assert (by_project[a]["budget"], by_project[a]["allocated"], by_project[a]["disbursed"], by_project[a]["used_pct"]) == (
            "350000.00", "320000.00", "30019.00", "8.58")
        assert by_project[a]["township_code"] == t1

        by_source = {r["source"]: r for r in await report(group_by="source")}
        # central: budgets 300,000 + 10,000 = 310,000; disbursed 30,019 → 9.6835…% → 9.68
        assert (by_source["central"]["budget"], by_source["central"]["allocated"], by_source["central"]["disbursed"],
                by_source["central"]["used_pct"]) == ("310000.00", "300000.00", "30019.00", "9.68")
        # county: 150,000 budget; 120,000 allocated; 66,666.67 disbursed → 44.444…% → 44.44
        assert (by_source["county"]["budget"], by_source["county"]["allocated"], by_source["county"]["disbursed"],
                by_source["county"]["used_pct"]) == ("150000.00", "120000.00", "66666.67", "44.44")

        by_township = {r["township_code"]: r for r in await report(group_by="township")}
        # t1: 360,000 budget, 30,019 disbursed → 8.3386…% → 8.34
        assert (by_township[t1]["budget"], by_township[t1]["disbursed"], by_township[t1]["used_pct"]) == (
            "360000.00", "30019.00", "8.34")
        assert (by_township[t2]["budget"], by_township[t2]["used_pct"]) == ("100000.00", "66.67")

        by_year = {r["year"]: r for r in await report(group_by="year")}
        # 2026: 450,000 budget, 96,685.67 disbursed → 21.4857…% → 21.49; 2025: 0.00
        assert (by_year[2026]["budget"], by_year[2026]["disbursed"], by_year[2026]["used_pct"]) == (
            "450000.00", "96685.67", "21.49")
        assert by_year[2025]["used_pct"] == "0.00"

        only_t2 = await report(township=t2, group_by="project")
        assert [r["project_id"] for r in only_t2] == [b]
        assert c not in {r["project_id"] for r in await report(year=2026, group_by="project")}
        async with owner_sessionmaker() as session:
            assert (await ledger.check(session)).ok
