from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select

from fupin.auth.roles import Role
from fupin.loans import jobs as loan_jobs
from fupin.loans.models import Loan
from tests.factories import token_for
from tests.loans.factories import make_bank, make_household, post_events
from tests.loans.test_applications import submit
from tests.loans.test_bank import approved, disb, rep

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


class TestConcurrencyAndOverdue:
    async def test_two_concurrent_full_repayments_apply_once(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id))
        r1, r2 = await asyncio.gather(post_events(client, bank, rep(app_id, "c1", "10000.00")),
                                      post_events(client, bank, rep(app_id, "c2", "10000.00")))
        assert sorted([r1.status_code, r2.status_code]) == [200, 422]
        codes = {r1.json()["results"][0]["code"], r2.json()["results"][0]["code"]}
        assert codes == {None, "loan.over_repayment"}
        async with owner_sessionmaker() as s:
            loan = await s.scalar(select(Loan).where(Loan.application_id == app_id))
        assert loan is not None
        assert str(loan.outstanding) == "0.00"

    async def test_overdue_sweep_marks_loan_and_application(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id, due="2026-11-15"))
        async with owner_sessionmaker() as s, s.begin():
            await loan_jobs.mark_overdue(s, as_of=date(2026, 11, 15))
            loan = await s.scalar(select(Loan).where(Loan.application_id == app_id))
            assert loan is not None
            assert loan.status == "current"  # due today is not yet overdue
            await loan_jobs.mark_overdue(s, as_of=date(2026, 11, 16))
            await s.refresh(loan)
            assert loan.status == "overdue"
        got = (await client.get(f"/loan-applications/{app_id}", headers=world.h[R.credit_coop])).json()
        assert got["status"] == "overdue"
        listed = (await client.get("/loans", headers=world.h[R.credit_coop], params={"status": "overdue"})).json()
        assert [x["application_id"] for x in listed["items"]] == [app_id]
        r = await post_events(client, bank, rep(app_id, "late", "10000.00", on="2026-11-20"))
        assert r.status_code == 200
        loan_read = (await client.get(f"/loans/{listed['items'][0]['id']}", headers=world.h[R.credit_coop])).json()
        assert loan_read["status"] == "repaid_late"


class TestBankClients:
    async def test_register_and_rotate_with_zero_overlap(self, client, owner_sessionmaker, world):
        from tests.loans.factories import Bank

        r = await client.post("/bank/clients", headers=world.h[R.credit_union], json={
            "client_id": "rcc-" + world.township, "institution_code": "RCC1", "area_code": world.township})
        assert r.status_code == 201, r.text
        first = r.json()
        bank = Bank(first["client_id"], first["secret"], world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        assert (await post_events(client, bank, disb(app_id))).status_code == 200
        r = await client.post(f"/bank/clients/{bank.client_id}/secrets", headers=world.h[R.credit_union],
                              json={"overlap_hours": 0})
        assert r.status_code == 201
        new_secret = r.json()["secret"]
        assert (await post_events(client, bank, rep(app_id, "x1", "1.00"))).status_code == 401
        assert (await post_events(client, bank, rep(app_id, "x1", "1.00"), secret=new_secret)).status_code == 200
        r = await client.post(f"/bank/clients/{bank.client_id}/secrets", headers=world.h[R.township_station],
                              json={"overlap_hours": 0})
        assert r.status_code == 403

    async def test_bank_client_cannot_use_staff_routes(self, client, owner_sessionmaker, world):
        from tests.loans.factories import signed

        bank = await make_bank(owner_sessionmaker, world.township)
        _, headers = signed(bank, {})
        assert (await client.get("/loans", headers=headers)).status_code == 401


class TestBulkLimits:
    async def test_a_thousand_repayments_in_one_request(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id))
        events = [rep(app_id, f"k{i}", "1.25") for i in range(1000)]
        r = await post_events(client, bank, {"events": events})
        assert r.status_code == 200
        assert {x["status"] for x in r.json()["results"]} == {"applied"}
        loan = (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"][0]
        assert loan["outstanding"] == "8750.00"  # 10,000.00 − 1,000 × 1.25
        r = await post_events(client, bank, {"events": [*events, rep(app_id, "k1000", "1.00")]})
        assert r.status_code == 422  # more than 1,000 events

    async def test_same_event_id_twice_in_one_batch_applies_once(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id))
        r = await post_events(client, bank, {"events": [rep(app_id, "dup", "100.00"), rep(app_id, "dup", "100.00"),
                                                        rep(app_id, "dup", "200.00")]})
        assert [x["status"] for x in r.json()["results"]] == ["applied", "duplicate", "conflict"]
        loan = (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"][0]
        assert loan["outstanding"] == "9900.00"
