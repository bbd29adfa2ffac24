"""Two concurrent full repayments apply once; the daily overdue sweep marks the loan and its application."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select

from fupin.auth.roles import Role
from fupin.loans import jobs as loan_jobs
from fupin.loans.models import Loan
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep

R = Role


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
