from __future__ import annotations

import time
from decimal import Decimal

from fupin.auth.roles import Role
from tests.factories import token_for
from tests.loans.factories import make_bank, make_household, post_events, signed
from tests.loans.test_applications import step, submit, to_assessed

R = Role


async def approved(client, owner_sessionmaker, world, amount="10000.00") -> str:
    hh, _ = await make_household(owner_sessionmaker, world.village)
    app = (await submit(client, world, hh, amount=amount)).json()
    await to_assessed(client, world, app["id"])
    r = await step(client, world, app["id"], "approve", R.credit_coop, "2026-10-13")
    assert r.status_code == 201, r.text
    return app["id"]


def disb(app_id, eid="d1", amount="10000.00", on="2026-10-15", due="2026-11-10"):
    return {"event_id": eid, "kind": "disbursement", "application_id": app_id, "external_id": "EXT-" + eid,
            "amount": amount, "on": on, "due_on": due, "rate": "0.043500"}


def rep(app_id, eid, amount, on="2026-11-01"):
    return {"event_id": eid, "kind": "repayment", "application_id": app_id, "amount": amount, "on": on}


class TestSignature:
    async def test_bad_signature_stale_and_future_timestamps_are_401(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        body, headers = signed(bank, disb(app_id))
        r = await client.post("/bank/loan-events", content=body, headers={**headers, "X-Fupin-Signature": "00" * 32})
        assert r.status_code == 401
        assert r.json()["code"] == "bank.bad_signature"
        r = await client.post("/bank/loan-events", content=body + b" ", headers=headers)  # body changed after signing
        assert r.status_code == 401
        for skew in (-301, 301):
            r = await post_events(client, bank, disb(app_id), ts=int(time.time()) + skew)
            assert r.status_code == 401
            assert r.json()["code"] == "bank.stale_timestamp"
        r = await post_events(client, bank, disb(app_id), secret="another-banks-secret")
        assert r.status_code == 401
        r = await client.post("/bank/loan-events", json=disb(app_id))
        assert r.status_code == 401
        # nothing was written by any of those
        loans = (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"]
        assert loans == []

    async def test_rotation_accepts_either_secret_during_the_overlap_and_only_the_new_one_after(
        self, app, client, owner_sessionmaker, world
    ):
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import update

        from fupin.loans.models import BankClientSecret

        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        r = await client.post(f"/bank/clients/{bank.client_id}/secrets", headers=world.h[R.credit_union],
                              json={"overlap_hours": 24})
        assert r.status_code == 201, r.text
        new_secret, until = r.json()["secret"], r.json()["previous_valid_until"]
        assert new_secret != bank.secret
        assert until is not None
        # during the overlap: the old secret alone, the new one alone, and both at once all sign
        assert (await post_events(client, bank, disb(app_id))).status_code == 200
        assert (await post_events(client, bank, rep(app_id, "o1", "1.00"), secret=new_secret)).status_code == 200
        body, headers = signed(bank, rep(app_id, "o2", "1.00"))
        _, new_headers = signed(bank, rep(app_id, "o2", "1.00"), ts=int(headers["X-Fupin-Timestamp"]),
                                secret=new_secret)
        both = f"{headers['X-Fupin-Signature']} {new_headers['X-Fupin-Signature']}"
        r = await client.post("/bank/loan-events", content=body, headers={**headers, "X-Fupin-Signature": both})
        assert r.status_code == 200, r.text
        # the overlap ends (moved into the past rather than waiting a day): the old secret is refused
        async with owner_sessionmaker() as s, s.begin():
            ended = await s.execute(update(BankClientSecret).where(
                BankClientSecret.client_id == bank.client_id, BankClientSecret.valid_until.is_not(None),
            ).values(valid_until=datetime.now(UTC) - timedelta(seconds=1)))
            assert ended.rowcount == 1
        # this process trusts the secrets it read for bank_credentials_cache_seconds: let that pass
        app.state.bank_credentials.forget(bank.client_id)
        r = await post_events(client, bank, rep(app_id, "r1", "1.00"))
        assert r.status_code == 401
        assert r.json()["code"] == "bank.bad_signature"
        assert (await post_events(client, bank, rep(app_id, "r1", "1.00"), secret=new_secret)).status_code == 200


class TestEvents:
    async def test_disburse_repay_partial_then_full_on_time(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        r = await post_events(client, bank, disb(app_id))
        assert r.status_code == 200, r.text
        loan_id = r.json()["results"][0]["loan_id"]
        assert (await post_events(client, bank, rep(app_id, "r1", "4000.00"))).status_code == 200
        loan = (await client.get(f"/loans/{loan_id}", headers=world.h[R.credit_coop])).json()
        assert loan["outstanding"] == "6000.00"
        assert loan["status"] == "overdue"  # due 2026-11-10 has passed (today is later) with 6,000.00 unpaid
        assert (await post_events(client, bank, rep(app_id, "r2", "6000.00", on="2026-11-10"))).status_code == 200
        loan = (await client.get(f"/loans/{loan_id}", headers=world.h[R.village_committee])).json()
        assert loan["outstanding"] == "0.00"
        assert loan["status"] == "repaid_on_time"
        assert loan["repaid_on"] == "2026-11-10"
        assert [x["amount"] for x in loan["repayments"]] == ["4000.00", "6000.00"]
        got = (await client.get(f"/loan-applications/{app_id}", headers=world.h[R.credit_coop])).json()
        assert got["status"] == "repaid"

    async def test_late_repayment_is_repaid_late(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id))
        r = await post_events(client, bank, rep(app_id, "r1", "10000.00", on="2026-11-11"))
        loan_id = r.json()["results"][0]["loan_id"]
        loan = (await client.get(f"/loans/{loan_id}", headers=world.h[R.credit_coop])).json()
        assert loan["status"] == "repaid_late"

    async def test_idempotent_replay_and_conflicting_replay(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        await post_events(client, bank, disb(app_id))
        assert (await post_events(client, bank, rep(app_id, "r1", "1000.00"))).status_code == 200
        r = await post_events(client, bank, rep(app_id, "r1", "1000.00"))
        assert r.status_code == 200
        assert r.json()["results"][0]["status"] == "duplicate"
        r = await post_events(client, bank, rep(app_id, "r1", "2000.00"))
        assert r.status_code == 409
        assert r.json()["results"][0]["code"] == "bank.event_conflict"
        loan = (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"][0]
        assert loan["outstanding"] == "9000.00"

    async def test_repayment_before_disbursement_is_parked_then_applied(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        r = await post_events(client, bank, rep(app_id, "r-early", "2500.00", on="2026-11-01"))
        assert r.status_code == 202
        assert r.json()["results"][0]["status"] == "parked"
        assert (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"] == []
        r = await post_events(client, bank, disb(app_id))
        loan_id = r.json()["results"][0]["loan_id"]
        loan = (await client.get(f"/loans/{loan_id}", headers=world.h[R.credit_coop])).json()
        assert loan["outstanding"] == "7500.00"
        assert [x["source_event_id"] for x in loan["repayments"]] == ["r-early"]

    async def test_bulk_with_mixed_good_and_bad_events(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        a1 = await approved(client, owner_sessionmaker, world)
        a2 = await approved(client, owner_sessionmaker, world)
        other_village = world.county.villages[world.county.townships[1]][0]
        foreign_hh, _ = await make_household(owner_sessionmaker, other_village)
        import uuid

        events = [
            disb(a1, "b1"),
            rep(a1, "b2", "3000.00"),
            rep(a1, "b3", "7000.01"),  # over-repayment: 7,000.00 left
            rep(str(uuid.uuid4()), "b4", "1.00"),  # unknown loan
            disb(a2, "b5", amount="10000.01"),  # more than approved
            disb(a2, "b6"),
            {"event_id": "b7", "kind": "reversal", "reverses_event_id": "b2", "on": "2026-11-02"},
        ]
        r = await post_events(client, bank, {"events": events})
        assert r.status_code == 200, r.text
        res = {x["event_id"]: (x["status"], x["code"]) for x in r.json()["results"]}
        assert res == {
            "b1": ("applied", None), "b2": ("applied", None), "b3": ("refused", "loan.over_repayment"),
            "b4": ("refused", "loan.unknown_loan"), "b5": ("refused", "loan.amount_over_approved"),
            "b6": ("applied", None), "b7": ("applied", None),
        }
        loans = (await client.get("/loans", headers=world.h[R.credit_coop])).json()["items"]
        by_app = {x["application_id"]: x for x in loans}
        assert by_app[a1]["outstanding"] == "10000.00"  # 3,000 repaid then reversed
        assert by_app[a2]["principal"] == "10000.00"
        assert foreign_hh  # the other township's household exists but is not reachable by this bank

    async def test_bank_of_another_township_sees_unknown_loan(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.county.townships[1])
        app_id = await approved(client, owner_sessionmaker, world)
        r = await post_events(client, bank, disb(app_id))
        assert r.status_code == 404
        assert r.json()["results"][0]["code"] == "loan.unknown_loan"

    async def test_future_value_date_is_refused(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        r = await post_events(client, bank, disb(app_id, on="2099-01-01", due="2099-06-01"))
        assert r.status_code == 422
        assert r.json()["results"][0]["code"] == "bank.value_date_in_future"

    async def test_float_amounts_are_refused(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        r = await post_events(client, bank, {**rep("00000000-0000-0000-0000-000000000000", "f1", "1.00"), "amount": 1.5})
        assert r.status_code == 422
        assert r.json()["code"] == "request.invalid"


class TestReadsAndReports:
    async def test_loans_of_another_township_are_invisible(self, client, owner_sessionmaker, test_settings, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        loan_id = (await post_events(client, bank, disb(app_id))).json()["results"][0]["loan_id"]
        other = await token_for(owner_sessionmaker, test_settings, role=R.township_station,
                                area_code=world.county.townships[1])
        assert (await client.get(f"/loans/{loan_id}", headers=other)).status_code == 404
        assert (await client.get("/loans", headers=other)).json()["items"] == []
        r = await client.get("/notices/loans", headers=other, params={"township": world.township, "month": "2026-10"})
        assert r.status_code == 404

    async def test_notice_quarterly_reports_and_reconciliation(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        a1 = await approved(client, owner_sessionmaker, world)
        a2 = await approved(client, owner_sessionmaker, world, amount="5000.00")
        await post_events(client, bank, {"events": [
            disb(a1, "q1"), disb(a2, "q2", amount="4000.00"),
            rep(a1, "q3", "10000.00", on="2026-11-20"), rep(a2, "q4", "1500.00", on="2026-11-21"),
        ]})
        n = (await client.get("/notices/loans", headers=world.h[R.township_station],
                              params={"township": world.township, "month": "2026-10"})).json()
        assert {x["application_id"] for x in n["recommended"]} == {a1, a2}
        assert {x["outcome"] for x in n["decisions"]} == {"approved"}
        assert sorted(x["amount"] for x in n["disbursements"]) == ["10000.00", "4000.00"]
        params = {"township": world.township, "quarter": "2026Q4"}
        st = (await client.get("/reports/loans-quarterly", headers=world.h[R.poverty_office],
                               params={**params, "version": "station"})).json()
        co = (await client.get("/reports/loans-quarterly", headers=world.h[R.credit_union],
                               params={**params, "version": "coop"})).json()
        assert st["due_on"] == "2027-01-05"
        # Both versions count what was actually disbursed (¥4,000 of the ¥5,000 approved for a2) and every
        # repayment received in the quarter, the partial ¥1,500 too: no spurious difference to reconcile.
        assert (st["disbursed_amount"], st["recovered_amount"]) == ("14000.00", "11500.00")
        assert (co["disbursed_amount"], co["recovered_amount"]) == ("14000.00", "11500.00")
        rec = (await client.get("/reports/loans-quarterly/reconciliation", headers=world.h[R.poverty_office],
                                params=params)).json()
        assert rec["differences"] == []
        assert Decimal(rec["station"]["disbursed_amount"]) == Decimal(rec["coop"]["disbursed_amount"])
