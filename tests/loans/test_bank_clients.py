"""Bank machine clients: registration, secret rotation with zero overlap, and no access to staff routes."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep

R = Role


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
