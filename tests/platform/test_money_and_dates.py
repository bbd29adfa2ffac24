"""One money input type and strict dates everywhere (issues 14 and 18.3): the shared types refuse every
trick with the field's path, and writes echo money with exactly two places, as reads do."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from fupin.auth.roles import Role
from fupin.money import Day, Money, MoneyIn, PositiveMoney, SignedMoneyIn
from tests.factories import new_county, token_for


class _In(BaseModel):
    positive: PositiveMoney | None = None
    zero_ok: MoneyIn | None = None
    signed: SignedMoneyIn | None = None
    day: Day | None = None


class _Out(BaseModel):
    amount: Money


BAD_AMOUNTS = ["1.5e6", "1E2", "NaN", "nan", "Infinity", "-Infinity", " 5", "5 ", "5\n", "\t5", "1,000",
               "+5", ".5", "5.", "5.001", "0x10", "１２", "", "1_000", "0005", "1234567890123"]


@pytest.mark.parametrize("value", [*BAD_AMOUNTS, 5, 5.5, True, [], {}])
def test_money_input_refuses_every_trick_with_the_field_path(value):
    with pytest.raises(ValidationError) as err:
        _In.model_validate({"zero_ok": value})
    assert err.value.errors()[0]["loc"] == ("zero_ok",)


@pytest.mark.parametrize("value", ["-1", "-0.01"])
def test_negatives_are_refused_unless_the_field_is_signed(value):
    with pytest.raises(ValidationError):
        _In.model_validate({"zero_ok": value})
    assert _In.model_validate({"signed": value}).signed == Decimal(value)


def test_positive_money_refuses_zero_and_accepts_two_places():
    with pytest.raises(ValidationError):
        _In.model_validate({"positive": "0.00"})
    assert _In.model_validate({"positive": "0.01"}).positive == Decimal("0.01")
    assert _In.model_validate({"zero_ok": "0"}).zero_ok == Decimal(0)
    assert _In.model_validate({"zero_ok": "999999999999.99"}).zero_ok == Decimal("999999999999.99")


@pytest.mark.parametrize("value", ["2026-06-01T00:00:00", "2026-06-01 00:00", "20260601", "2026-6-1",
                                   1780272000, " 2026-06-01", "2026-02-30"])
def test_dates_are_strictly_iso_days(value):
    with pytest.raises(ValidationError) as err:
        _In.model_validate({"day": value})
    assert err.value.errors()[0]["loc"] == ("day",)
    assert _In.model_validate({"day": "2026-06-01"}).day == date(2026, 6, 1)


@pytest.mark.parametrize(("value", "wire"), [("3200", "3200.00"), ("3300.5", "3300.50"), ("0", "0.00"),
                                             ("-12.3", "-12.30"), ("1.005", "1.01")])
def test_money_output_always_has_two_places(value, wire):
    assert _Out(amount=Decimal(value)).model_dump(mode="json") == {"amount": wire}
    assert _Out(amount=Decimal(value)).model_dump_json() == f'{{"amount":"{wire}"}}'


async def test_routes_refuse_exponents_and_datetimes_and_echo_two_places(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    quota = {"township_code": county.townships[0], "year": 2026}

    r = await client.put("/loan-quotas", headers=hdr, json={**quota, "amount": "1.5e6"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["path"] for e in r.json()["errors"]] == ["body.amount"]
    r = await client.put("/loan-quotas", headers=hdr, json={**quota, "amount": 3200})
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "body.amount"

    r = await client.put("/loan-quotas", headers=hdr, json={**quota, "amount": "3300.5"})
    assert r.status_code == 200, r.text
    assert (r.json()["amount"], r.json()["used"], r.json()["remaining"]) == ("3300.50", "0.00", "3300.50")

    r = await client.put("/loan-holidays", headers=hdr, json={"year": 2026, "holidays": ["2026-06-01T00:00:00"]})
    assert r.status_code == 422, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["body.holidays.0"]

    r = await client.get("/loan-applications", headers=hdr, params={"overdue": "true", "as_of": "2026-06-01T00:00:00"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["path"] == "query.as_of"
