"""Poverty-prevention insurance: premium into the county fund, a claim computed by the tiered policy to the
fen (the seed's leukaemia case), posted on the balanced ledger, paid once under duplicate submission and
duplicate payment, a cadre paired with the aided household, the annual cap, and refusals."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from sqlalchemy import func, select

from fupin.ledger.models import JournalEntry, JournalLine, LedgerAccount
from tests.monitoring.factories import R, exited_household, plain_cadre, post, warning_body

SEED_TIERS = [{"start": "0.00", "rate": "0.300000"}, {"start": "40000.00", "rate": "0.600000"},
              {"start": "100000.00", "rate": "0.900000"}]
LEUKAEMIA = {"hospital": "省人民医院", "bill_no": "ZY2026-000123", "bill_date": "2026-08-20",
             "total_cost": "587515.31", "out_of_pocket": "268010.10"}


def policy_body(world, **over) -> dict:
    return {"area_code": world.county.code, "name": "2026年度防贫保险", "insurer": "太平洋财险",
            "effective_from": "2026-01-01", "effective_to": "2026-12-31", "insured_persons": 72000,
            "premium_per_person": "50.00", "deductible": "20000.00", "annual_cap": "200000.00",
            "tiers": SEED_TIERS, **over}


async def funded_policy(client, world, **over) -> dict:
    policy = await post(client, "/insurance-policies", world.h[R.poverty_office], policy_body(world, **over))
    r = await client.post(f"/insurance-policies/{policy['id']}/premium", headers=world.h[R.finance_bureau],
                          json={"on": "2026-01-10"})
    assert r.status_code == 200, r.text
    return r.json()


async def monitored_person(client, world) -> tuple[str, str, uuid.UUID]:
    """(monitored household id, insured member id, registry household id)."""
    hh, people = await exited_household(world.sm, world.village)
    w = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(hh, on="2026-08-25"))
    return w["monitored_household_id"], str(people[0][0]), hh


async def claim_step(client, world, claim_id: str, name: str, on: str, status: int = 200, **body) -> dict:
    role = {"assess": R.poverty_office, "approve": R.finance_bureau, "pay": R.finance_bureau}[name]
    r = await client.post(f"/insurance-claims/{claim_id}/{name}", headers=world.h[role], json={"on": on, **body})
    assert r.status_code == status, r.text
    return r.json()


async def balance(sm, code: str) -> Decimal | None:
    async with sm() as session:
        return await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.code == code))


class TestPolicyAndPremium:
    async def test_premium_funds_the_county_insurance_fund_once(self, client, world):
        policy = await funded_policy(client, world)
        assert (policy["premium_total"], policy["premium_posted_on"]) == ("3600000.00", "2026-01-10")
        assert await balance(world.sm, f"finance_bureau:{world.county.code}:insurance") == Decimal("3600000.00")
        r = await client.post(f"/insurance-policies/{policy['id']}/premium", headers=world.h[R.finance_bureau],
                              json={"on": "2026-01-11"})
        assert (r.status_code, r.json()["code"]) == (409, "insurance.premium_posted")
        r = await client.post("/insurance-policies", headers=world.h[R.poverty_office],
                              json=policy_body(world, effective_from="2026-06-01", effective_to="2027-05-31"))
        assert (r.status_code, r.json()["code"]) == (409, "insurance.policy_overlaps")
        r = await client.post("/insurance-policies", headers=world.h[R.poverty_office],
                              json=policy_body(world, effective_from="2027-01-01", effective_to="2027-12-31",
                                               tiers=[{"start": "100.00", "rate": "0.5"}]))
        assert (r.status_code, r.json()["code"]) == (422, "insurance.tiers_invalid")
        r = await client.post("/insurance-policies", headers=world.h[R.finance_bureau], json=policy_body(world))
        assert r.status_code == 403
        # the village reads its county's policy
        listed = (await client.get("/insurance-policies", headers=world.h[R.village_committee])).json()["items"]
        assert [p["id"] for p in listed] == [policy["id"]]


class TestClaim:
    async def test_tiered_payout_to_the_fen_paid_once_with_a_cadre_and_a_measure(self, client, world):
        await funded_policy(client, world)
        mh_id, person, household = await monitored_person(client, world)
        claim = await post(client, "/insurance-claims", world.h[R.village_committee],
                           {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                            "bills": [LEUKAEMIA]})
        assert (claim["status"], claim["out_of_pocket"], claim["payable"], claim["person_name"]) == (
            "submitted", "268010.10", None, "成员0")
        assert claim["id_masked"].count("*") == 10
        # a duplicate submission of the same bill is refused: it can only ever be paid once
        r = await client.post("/insurance-claims", headers=world.h[R.township_station],
                              json={"monitored_household_id": mh_id, "person_id": person,
                                    "submitted_on": "2026-08-27", "bills": [LEUKAEMIA]})
        assert (r.status_code, r.json()["code"]) == (409, "insurance.bill_already_claimed")
        await claim_step(client, world, claim["id"], "approve", "2026-08-27", status=409)  # not assessed yet
        assessed = await claim_step(client, world, claim["id"], "assess", "2026-08-28", opinion="核实无误")
        assert assessed["payable"] == "181209.09"
        await claim_step(client, world, claim["id"], "approve", "2026-08-29")
        r = await claim_step(client, world, claim["id"], "pay", "2026-08-31", status=422)
        assert r["code"] == "insurance.cadre_required"
        cadre = await plain_cadre(client, world)
        paid = await claim_step(client, world, claim["id"], "pay", "2026-08-31", cadre_id=cadre)
        assert (paid["status"], paid["paid_on"]) == ("paid", "2026-08-31")
        again = await claim_step(client, world, claim["id"], "pay", "2026-08-31", status=409, cadre_id=cadre)
        assert again["code"] == "insurance.invalid_transition"
        async with world.sm() as session:
            entries = (await session.scalars(select(JournalEntry).where(
                JournalEntry.reference == f"insurance.payout:{claim['id']}"))).all()
            lines = (await session.execute(select(JournalLine.debit, JournalLine.credit).where(
                JournalLine.entry_id == entries[0].id))).all()
        assert len(entries) == 1
        assert sorted(lines) == [(Decimal("0.00"), Decimal("181209.09")), (Decimal("181209.09"), Decimal("0.00"))]
        assert await balance(world.sm, f"household:{household}:insurance") == Decimal("181209.09")
        assert await balance(world.sm, f"finance_bureau:{world.county.code}:insurance") == Decimal("3418790.91")
        mh = (await client.get(f"/monitored-households/{mh_id}", headers=world.h[R.poverty_office])).json()
        assert mh["cadre_id"] == cadre
        measures = (await client.get(f"/monitored-households/{mh_id}/measures",
                                     headers=world.h[R.village_committee])).json()["items"]
        assert [(m["kind"], m["amount"], m["claim_id"], m["status"], m["cadre_id"]) for m in measures] == [
            ("insurance", "181209.09", claim["id"], "done", cadre)]

    async def test_concurrent_duplicate_submissions_and_payments_pay_once(self, client, world):
        await funded_policy(client, world)
        mh_id, person, household = await monitored_person(client, world)
        body = {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                "bills": [{**LEUKAEMIA, "bill_no": "ZY-PARALLEL"}]}
        results = await asyncio.gather(*(client.post("/insurance-claims", headers=world.h[R.village_committee],
                                                      json=body) for _ in range(3)))
        assert sorted(r.status_code for r in results) == [201, 409, 409]
        claim = next(r.json() for r in results if r.status_code == 201)
        await claim_step(client, world, claim["id"], "assess", "2026-08-28")
        await claim_step(client, world, claim["id"], "approve", "2026-08-29")
        cadre = await plain_cadre(client, world)
        pays = await asyncio.gather(*(client.post(f"/insurance-claims/{claim['id']}/pay",
                                                  headers=world.h[R.finance_bureau],
                                                  json={"on": "2026-08-31", "cadre_id": cadre}) for _ in range(3)))
        assert sorted(r.status_code for r in pays) == [200, 409, 409]
        async with world.sm() as session:
            n = await session.scalar(select(func.count()).select_from(JournalEntry).where(
                JournalEntry.kind == "insurance.payout", JournalEntry.reference.like(f"%{claim['id']}")))
        assert n == 1
        assert await balance(world.sm, f"household:{household}:insurance") == Decimal("181209.09")

    async def test_the_annual_cap_limits_a_second_claim(self, client, world):
        await funded_policy(client, world)
        mh_id, person, _ = await monitored_person(client, world)
        first = await post(client, "/insurance-claims", world.h[R.village_committee],
                           {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                            "bills": [LEUKAEMIA]})
        await claim_step(client, world, first["id"], "assess", "2026-08-28")
        second = await post(client, "/insurance-claims", world.h[R.village_committee],
                            {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-10-08",
                             "bills": [{**LEUKAEMIA, "bill_no": "ZY2026-000456", "bill_date": "2026-10-01",
                                        "total_cost": "150000.00", "out_of_pocket": "100000.00"}]})
        # 100,000 − 20,000 = 80,000: 40,000 × 30% + 40,000 × 60% = 36,000.00; left of the ¥200,000 cap: 18,790.91
        assert (await claim_step(client, world, second["id"], "assess", "2026-10-09"))["payable"] == "18790.91"

    async def test_rejection_needs_a_reason_and_releases_the_bills(self, client, world):
        await funded_policy(client, world)
        mh_id, person, _ = await monitored_person(client, world)
        body = {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                "bills": [LEUKAEMIA]}
        claim = await post(client, "/insurance-claims", world.h[R.village_committee], body)
        url = f"/insurance-claims/{claim['id']}/reject"
        r = await client.post(url, headers=world.h[R.finance_bureau], json={"on": "2026-08-27", "opinion": "x"})
        assert (r.status_code, r.json()["code"]) == (409, "insurance.invalid_transition")  # not assessed yet
        r = await client.post(url, headers=world.h[R.poverty_office], json={"on": "2026-08-27"})
        assert (r.status_code, r.json()["code"]) == (422, "insurance.opinion_required")
        r = await client.post(url, headers=world.h[R.poverty_office], json={"on": "2026-08-27", "opinion": "票据不清"})
        assert r.json()["status"] == "rejected"
        await post(client, "/insurance-claims", world.h[R.village_committee], body)  # resubmitted, corrected

    async def test_a_fund_short_of_the_payout_pays_nothing(self, client, world):
        await funded_policy(client, world, insured_persons=100)  # ¥5,000.00 in the fund
        mh_id, person, _ = await monitored_person(client, world)
        claim = await post(client, "/insurance-claims", world.h[R.village_committee],
                           {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                            "bills": [LEUKAEMIA]})
        await claim_step(client, world, claim["id"], "assess", "2026-08-28")
        await claim_step(client, world, claim["id"], "approve", "2026-08-29")
        r = await claim_step(client, world, claim["id"], "pay", "2026-08-31", status=409,
                             cadre_id=await plain_cadre(client, world))
        assert (r["code"], r["extra"]["balance"]) == ("insurance.fund_insufficient", "5000.00")
        detail = (await client.get(f"/insurance-claims/{claim['id']}", headers=world.h[R.finance_bureau])).json()
        assert detail["status"] == "approved"

    async def test_refusals_and_other_areas(self, client, world):
        mh_id, person, _ = await monitored_person(client, world)
        body = {"monitored_household_id": mh_id, "person_id": person, "submitted_on": "2026-08-26",
                "bills": [LEUKAEMIA]}
        r = await client.post("/insurance-claims", headers=world.h[R.village_committee], json=body)
        assert (r.status_code, r.json()["code"]) == (422, "insurance.no_policy")
        await funded_policy(client, world)
        r = await client.post("/insurance-claims", headers=world.h[R.village_committee],
                              json={**body, "person_id": str(uuid.uuid4())})
        assert (r.status_code, r.json()["code"]) == (404, "person.not_found")
        r = await client.post("/insurance-claims", headers=world.h[R.village_committee],
                              json={**body, "bills": [{**LEUKAEMIA, "out_of_pocket": "600000.00"}]})
        assert r.status_code == 422
        claim = await post(client, "/insurance-claims", world.h[R.village_committee], body)
        neighbour = await world.header(R.village_committee, world.other_village)
        assert (await client.get(f"/insurance-claims/{claim['id']}", headers=neighbour)).status_code == 404
        assert (await client.get("/insurance-claims", headers=neighbour)).json()["items"] == []
        r = await client.post("/insurance-claims", headers=neighbour, json={**body, "bills": [
            {**LEUKAEMIA, "bill_no": "OTHER-1"}]})
        assert r.status_code == 404
        other_office = await world.header(R.poverty_office, "990199000000")
        r = await client.post(f"/insurance-claims/{claim['id']}/assess", headers=other_office, json={"on": "2026-08-28"})
        assert r.status_code == 404
