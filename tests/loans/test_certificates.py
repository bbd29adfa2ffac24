"""Credit certificates (village review, coop issue) and a township's loan readiness."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import token_for
from tests.loans.factories import make_household
from tests.loans.test_applications import submit

R = Role


class TestCertificatesAndReadiness:
    async def test_village_reviews_then_coop_issues_and_the_household_may_apply(self, client, owner_sessionmaker, world):
        hh, _ = await make_household(owner_sessionmaker, world.village, certificate=False)
        assert (await submit(client, world, hh)).json()["code"] == "loan.no_certificate"
        r = await client.post("/loan-certificates", headers=world.h[R.village_committee], json={
            "household_id": str(hh), "credit_rating": "good", "opinion": "收入稳定,诚实守信", "on": "2026-09-01"})
        assert r.status_code == 201, r.text
        cert = r.json()
        assert cert["status"] == "village_reviewed"
        r = await client.post(f"/loan-certificates/{cert['id']}/issue", headers=world.h[R.village_committee],
                              json={"number": "DKZ-1", "on": "2026-09-02"})
        assert r.status_code == 403
        assert (await submit(client, world, hh)).json()["code"] == "loan.no_certificate"
        r = await client.post(f"/loan-certificates/{cert['id']}/issue", headers=world.h[R.credit_coop],
                              json={"number": "DKZ-1", "on": "2026-09-02"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "issued"
        assert (await submit(client, world, hh)).status_code == 201

    async def test_certificate_of_another_township_is_404(self, client, owner_sessionmaker, test_settings, world):
        hh, _ = await make_household(owner_sessionmaker, world.village, certificate=False)
        cert = (await client.post("/loan-certificates", headers=world.h[R.village_committee], json={
            "household_id": str(hh), "credit_rating": "fair", "opinion": "ok", "on": "2026-09-01"})).json()
        other = await token_for(owner_sessionmaker, test_settings, role=R.credit_coop,
                                area_code=world.county.townships[1])
        assert (await client.get(f"/loan-certificates/{cert['id']}", headers=other)).status_code == 404
        r = await client.post(f"/loan-certificates/{cert['id']}/issue", headers=other, json={"number": "X", "on": "2026-09-02"})
        assert r.status_code == 404

    async def test_county_marks_a_township_ready(self, client, world):
        other = world.county.townships[1]
        r = await client.get(f"/loan-townships/{other}/readiness", headers=world.h[R.poverty_office])
        assert r.json()["ready"] is False
        r = await client.put(f"/loan-townships/{other}/readiness", headers=world.h[R.county_admin],
                             json={"ready": True, "note": "领导、机构、人员三到位"})
        assert r.status_code == 200
        assert r.json()["ready"] is True
        r = await client.put(f"/loan-townships/{other}/readiness", headers=world.h[R.township_station],
                             json={"ready": True})
        assert r.status_code == 403
