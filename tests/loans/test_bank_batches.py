"""Bank batches: a thousand repayments in one request, and one event id twice in a batch applies once."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep

R = Role


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
