"""Perf rule 1's guard: the set-based SQL settlement equals the pure-Python rule to the fen, per loan,
with a county policy change in the middle (a loan takes the policy in force on its disbursement date)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from fupin.auth.roles import Role
from fupin.calendar import Quarter
from fupin.subsidies import rules
from fupin.subsidies.models import SubsidyPayout
from fupin_worker import runner
from tests.factories import new_county, token_for
from tests.subsidies import factories as f
from tests.subsidies.test_cycle import assert_ledger_ok

D = Decimal
Q3 = Quarter(2026, 3)
CHANGE = date(2026, 3, 1)
NEW_RATE = D("0.031500")


async def test_policy_api_validates_and_lists(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    fin = await token_for(owner_sessionmaker, test_settings, role=Role.finance_bureau, area_code=county.code)
    r = await client.post("/subsidy-policies", headers=fin, json={"effective_from": "2026-03-01", "rate": 0.0315})
    assert r.status_code == 422  # a JSON float is refused
    r = await client.post("/subsidy-policies", headers=fin, json={"effective_from": "2026-03-01", "rate": "0.0315"})
    assert r.status_code == 201, r.text
    assert (r.json()["rate"], r.json()["day_count"], r.json()["productive_only"]) == ("0.031500", "actual/365", True)
    r = await client.post("/subsidy-policies", headers=fin, json={"effective_from": "2026-03-01", "rate": "0.03"})
    assert r.status_code == 409
    town_fin = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance,
                               area_code=county.townships[0])
    r = await client.post("/subsidy-policies", headers=town_fin, json={"effective_from": "2026-04-01", "rate": "0.03"})
    assert r.status_code == 403
    items = (await client.get("/subsidy-policies", headers=town_fin)).json()["items"]
    assert [(p["effective_from"], p["rate"]) for p in items] == [("2026-03-01", "0.031500")]


async def test_sql_settlement_equals_python_reference(client, owner_sessionmaker, app_sessionmaker, test_settings):
    sm = owner_sessionmaker
    rng = random.Random(20260701)
    county = await new_county(sm)
    town = county.townships[0]
    fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
    r = await client.post("/subsidy-policies", headers=fin,
                          json={"effective_from": CHANGE.isoformat(), "rate": str(NEW_RATE)})
    assert r.status_code == 201
    villages = county.villages[town]
    homes = [(await f.household(sm, v, head=f"户{i}"))[0] for i, v in enumerate(villages * 4)]
    loans: dict = {}
    for i in range(120):
        principal = D(rng.randint(100, 5_000_000)) / 100
        disbursed = date(2025, 8, 1) + timedelta(days=rng.randint(0, 330))
        due = disbursed + timedelta(days=rng.randint(30, 365))
        repaid = disbursed + timedelta(days=rng.randint(0, (due - disbursed).days + 40))
        parts: list[tuple[date, str]]
        if rng.random() < 0.4 and (repaid - disbursed).days > 2:
            first = D(rng.randint(1, int(principal * 100) - 1)) / 100
            mid = disbursed + timedelta(days=rng.randint(1, (repaid - disbursed).days - 1))
            parts = [(mid, str(first)), (repaid, str(principal - first))]
        else:
            parts = [(repaid, str(principal))]
        if rng.random() < 0.1:
            parts = parts[:-1]  # still outstanding
        enterprise = rng.random() < 0.1
        productive = rng.random() < 0.85
        lid = await f.loan(sm, villages[i % 2], principal=str(principal), disbursed=disbursed, due=due,
                           repayments=parts, productive=productive, coop=rng.choice(["C1", "C2"]),
                           household_id=None if enterprise else homes[i % len(homes)],
                           enterprise=f"企业{i}" if enterprise else None)
        loans[lid] = (principal, disbursed, due, parts, productive)

    for phase in ("allocation", "preallocation", "settlement"):
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": str(Q3), "phase": phase})
        assert r.status_code == 202, r.text
        assert await runner.execute(app_sessionmaker, test_settings, r.json()["job_key"]) == "done"
        run_id = r.json()["id"]

    want: dict = {}
    for lid, (principal, disbursed, due, parts, productive) in loans.items():
        reps = [rules.Repayment(d, D(a)) for d, a in parts]
        if sum((r.amount for r in reps), D(0)) != principal or not Q3.start <= max(d for d, _ in parts) <= Q3.end:
            continue
        rate = NEW_RATE if disbursed >= CHANGE else rules.DEFAULT_RATE
        ent = rules.entitlement(principal=principal, disbursed_on=disbursed, due_on=due, repayments=reps,
                                productive=productive, rate=rate)
        if ent.eligible:
            want[lid] = ent.amount
    async with sm() as s:
        got = dict((await s.execute(select(SubsidyPayout.loan_id, SubsidyPayout.amount)
                                    .where(SubsidyPayout.run_id == run_id))).all())
    assert len(want) > 10
    assert got == want
    run = (await client.get(f"/subsidy-runs/{run_id}", headers=fin)).json()
    assert D(run["total_paid"]) == sum(want.values(), D(0))
    await assert_ledger_ok(client, sm, test_settings, county.code)
