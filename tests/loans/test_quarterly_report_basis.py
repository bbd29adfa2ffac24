"""第十二条3/4: the station's quarterly report counts what the coop actually disbursed and every repayment
received in the quarter, partial ones too, as the coop's does; reconciliation then shows only real
differences — here a disbursement the coop reversed, which the station had been told of."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep

R = Role


class TestStationQuarterlyReport:
    async def test_actual_amounts_and_partial_repayments_leave_only_real_differences(
            self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        partly = await approved(client, owner_sessionmaker, world, amount="8000.00")
        reversed_app = await approved(client, owner_sessionmaker, world, amount="6000.00")
        r = await post_events(client, bank, {"events": [
            disb(partly, "p1", amount="7500.00"),  # less than approved
            rep(partly, "p2", "2500.00", on="2026-11-05"), rep(partly, "p3", "0.01", on="2026-11-06"),
            disb(reversed_app, "p4", amount="6000.00", on="2026-10-16"),
            {"event_id": "p5", "kind": "reversal", "reverses_event_id": "p4", "on": "2026-10-20"},
        ]})
        assert [x["status"] for x in r.json()["results"]] == ["applied"] * 5
        params = {"township": world.township, "quarter": "2026Q4"}
        station = (await client.get("/reports/loans-quarterly", headers=world.h[R.township_station],
                                    params={**params, "version": "station"})).json()
        coop = (await client.get("/reports/loans-quarterly", headers=world.h[R.township_station],
                                 params={**params, "version": "coop"})).json()
        assert (station["disbursed_count"], station["disbursed_amount"], station["recovered_amount"]) == (
            2, "13500.00", "2500.01")
        assert (coop["disbursed_count"], coop["disbursed_amount"], coop["recovered_amount"]) == (
            1, "7500.00", "2500.01")
        rec = (await client.get("/reports/loans-quarterly/reconciliation", headers=world.h[R.poverty_office],
                                params=params)).json()
        assert [(d["application_id"], d["station_disbursed"], d["coop_disbursed"], d["station_recovered"],
                 d["coop_recovered"]) for d in rec["differences"]] == [
            (reversed_app, "6000.00", "0.00", "0.00", "0.00")]
