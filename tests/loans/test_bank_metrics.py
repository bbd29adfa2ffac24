"""fupin_bank_events_total counts each committed bank event once, by outcome."""

from __future__ import annotations

import uuid

from fupin_api import metrics
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep


def _count(status: str) -> float:
    return metrics.REGISTRY.get_sample_value("fupin_bank_events_total", {"status": status}) or 0.0


STATUSES = ("applied", "parked", "refused", "duplicate", "conflict")


class TestBankEventMetrics:
    async def test_every_outcome_moves_its_own_series(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        before = {s: _count(s) for s in STATUSES}
        assert (await post_events(client, bank, rep(app_id, "r-early", "100.00"))).json()["results"][0]["status"] == "parked"
        assert (await post_events(client, bank, disb(app_id))).json()["results"][0]["status"] == "applied"
        assert (await post_events(client, bank, disb(app_id))).json()["results"][0]["status"] == "duplicate"
        changed = disb(app_id, amount="9999.00")
        assert (await post_events(client, bank, changed)).json()["results"][0]["status"] == "conflict"
        unknown = rep(str(uuid.uuid4()), "r-unknown", "1.00")
        assert (await post_events(client, bank, unknown)).json()["results"][0]["status"] == "refused"
        after = {s: _count(s) for s in STATUSES}
        # the parked repayment is applied with the disbursement, but it was counted once, as parked
        assert {s: after[s] - before[s] for s in STATUSES} == {
            "applied": 1, "parked": 1, "refused": 1, "duplicate": 1, "conflict": 1,
        }

    async def test_a_rolled_back_batch_counts_nothing(self, app_sessionmaker):
        before = _count("applied")
        async with app_sessionmaker() as session:
            await session.begin()
            metrics.count_bank_events_after_commit(session, ["applied", "applied"])
            await session.rollback()
        assert _count("applied") == before
        async with app_sessionmaker() as session:
            await session.begin()
            metrics.count_bank_events_after_commit(session, ["applied"])
            await session.commit()
        assert _count("applied") == before + 1
