"""Money arithmetic: exact round trips through the job serializer and the API JSON, half-up rounding to the fen, exact splits."""

from __future__ import annotations

import json
from decimal import Decimal

from fupin.money import round_fen, split_exact
from fupin_worker.main import _dumps, _loads


def test_money_round_trips_exactly_through_job_serializer():
    payload = {"a": Decimal("0.10"), "b": Decimal("0.20")}
    back = _loads(_dumps(payload))
    assert Decimal(back["a"]) + Decimal(back["b"]) == Decimal("0.30")


async def test_money_round_trips_exactly_through_the_api_json(client):
    from fupin.schema import FupinSchema

    class M(FupinSchema):
        amount: Decimal

    dumped = json.loads(M(amount=Decimal("0.10")).model_dump_json())
    assert dumped["amount"] == "0.10"


def test_round_fen_is_half_up():
    assert round_fen(Decimal("255.875")) == Decimal("255.88")
    assert round_fen(Decimal("0.005")) == Decimal("0.01")
    assert round_fen(Decimal("0.0049")) == Decimal("0.00")


def test_split_exact_reference_case_and_leftover_fen():
    parts = split_exact(Decimal("108000.00"), [Decimal(1)] * 72)
    assert set(parts) == {Decimal("1500.00")}
    parts = split_exact(Decimal("100.00"), [Decimal(1)] * 3)
    assert parts == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert sum(parts) == Decimal("100.00")
