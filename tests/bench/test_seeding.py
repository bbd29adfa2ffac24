"""Seeders: valid synthetic ID numbers, a consistent synthetic province, the demo county and its users."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.auth.roles import Role
from fupin.db import unit_of_work
from fupin.errors import Conflict
from fupin.ledger import service as ledger
from fupin.monitoring import rules as monitoring_rules
from fupin.seeding import demo, demo_domains, idcard, synthetic

AS_OF = date(2026, 11, 23)


def test_check_character_matches_gb11643_examples() -> None:
    # The standard's worked example and a number ending in X.
    assert idcard.check_char("11010519491231002") == "X"
    assert idcard.is_valid("11010519491231002X")
    assert idcard.make_id("440524", date(1880, 1, 1), 1) == "440524188001010014"
    assert not idcard.is_valid("110105194912310021")
    assert idcard.sex_of(idcard.make_id("529901", date(1970, 1, 1), 3)) == "M"
    assert idcard.sex_of(idcard.make_id("529901", date(1970, 1, 1), 4)) == "F"


async def test_synthetic_province_is_consistent(owner_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with unit_of_work(owner_sessionmaker) as session:
        counts = await synthetic.seed_synthetic(
            session, townships=3, households=300, loans=900, villages_per_township=4, province="97", seed=7, as_of=AS_OF
        )
    assert (counts.areas, counts.households, counts.loans) == (1 + 1 + 1 + 3 + 12, 300, 900)
    async with owner_sessionmaker() as session:
        q = lambda sql: session.execute(text(sql))  # noqa: E731
        ids = [r[0] for r in await q("SELECT id_number FROM household_member WHERE area_code LIKE '97%'")]
        assert len(ids) == counts.members == len(set(ids))
        assert all(idcard.is_valid(n) and n[2:4] == "90" for n in ids)
        # The head's name is the household's head_name; the sex column follows the ID number.
        assert (await q("""SELECT count(*) FROM household h JOIN household_member m ON m.household_id = h.id
                           AND m.relation = '户主' WHERE h.area_code LIKE '97%' AND m.name = h.head_name""")).scalar() == 300
        assert (await q("""SELECT count(*) FROM household_member WHERE area_code LIKE '97%'
                           AND sex <> CASE WHEN substr(id_number, 17, 1)::int % 2 = 1 THEN 'M' ELSE 'F' END""")).scalar() == 0
        # Every loan's repayments add up to principal − outstanding; statuses agree with dates and balances.
        bad = (await q("""
            SELECT count(*) FROM loan l
            LEFT JOIN (SELECT loan_id, sum(amount) s FROM loan_repayment GROUP BY loan_id) r ON r.loan_id = l.id
            WHERE l.area_code LIKE '97%' AND (
                 coalesce(r.s, 0) <> l.principal - l.outstanding
              OR (l.status = 'current' AND (l.due_on <= DATE '2026-11-23' OR l.outstanding = 0))
              OR (l.status = 'overdue' AND (l.due_on >= DATE '2026-11-23' OR l.outstanding = 0))
              OR (l.status = 'repaid_on_time' AND (l.outstanding <> 0 OR l.repaid_on > l.due_on))
              OR (l.status = 'repaid_late' AND (l.outstanding <> 0 OR l.repaid_on <= l.due_on))
              OR l.township_code <> substr(l.area_code, 1, 9) || '000')""")).scalar()
        assert bad == 0
        statuses = {r[0] for r in await q("SELECT DISTINCT status FROM loan WHERE area_code LIKE '97%'")}
        assert statuses == set(synthetic.STATUSES)
        # Loans spread over every village.
        assert (await q("SELECT count(DISTINCT area_code) FROM loan WHERE area_code LIKE '97%'")).scalar() == 12
        total = (await q("SELECT sum(principal) FROM loan WHERE area_code LIKE '97%'")).scalar()
        assert isinstance(total, Decimal)
    # Same seed, same rows: the layout (names included) is reproducible.
    a = synthetic.province_layout(random.Random(7), province="97", townships=3, villages_per_township=4)
    b = synthetic.province_layout(random.Random(7), province="97", townships=3, villages_per_township=4)
    assert a == b
    with pytest.raises(Conflict):
        async with unit_of_work(owner_sessionmaker) as session:
            await synthetic.seed_synthetic(session, townships=1, households=1, loans=0, province="97")


async def test_demo_steps_build_a_county_whose_users_can_log_in(
    owner_sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """The demo's steps on a county of its own (the shared test database already has areas, so
    `seed_demo` itself would skip, which the last assertion checks)."""
    async with unit_of_work(owner_sessionmaker) as session:
        ctx = demo.DemoContext(session=session, rng=random.Random(1), as_of=AS_OF, county="969901000000")
        lines = [await step(ctx) for _, step in demo.load_steps()]
    assert lines[0] == "111 areas (10 townships, 100 villages)"
    assert lines[1].startswith("5,000 households")
    assert "overdue" in lines[2]
    assert "repaid_late" in lines[2]
    assert set(ctx.users) == {r for r in Role if r is not Role.system}
    username, password = ctx.users[Role.county_admin]
    token = await client.post("/auth/token", data={"username": username, "password": password})
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    villages = await client.get("/areas", params={"level": "village", "limit": 500}, headers=headers)
    assert len(villages.json()["items"]) == 100
    async with unit_of_work(owner_sessionmaker) as session:
        assert (await demo.seed_demo(session)).skipped
    await _demo_bank_client_signs(client, ctx)
    await _demo_domains_are_alive(owner_sessionmaker)
    # Through the API (row-level security on): the county sees its pools, projects and applications...
    pools = await client.get("/dividend-pools", headers=headers)
    assert len(pools.json()["items"]) == 2
    projects = await client.get("/projects", params={"limit": 500}, headers=headers)
    assert len(projects.json()["items"]) == 12
    apps = await client.get("/loan-applications", params={"limit": 500}, headers=headers)
    assert {a["status"] for a in apps.json()["items"]} == set(demo_domains.APPLICATION_STATES)
    # ...and the demo cadre logs in to exactly their own households.
    username, password = ctx.users[Role.cadre]
    token = await client.post("/auth/token", data={"username": username, "password": password})
    cadre = {"Authorization": f"Bearer {token.json()['access_token']}"}
    pairings = (await client.get("/pairings", headers=cadre)).json()["items"]
    assert pairings
    assert len({p["cadre_id"] for p in pairings}) == 1


async def _demo_bank_client_signs(client: httpx.AsyncClient, ctx: demo.DemoContext) -> None:
    """The demo's bank client, with the secret the report prints, is admitted by the bank API: an event for an
    application it does not know is refused on its own merits, not for the signature."""
    from tests.loans.factories import Bank, post_events

    assert ctx.bank is not None
    client_id, institution, secret = ctx.bank
    assert institution == synthetic.coop_code(ctx.townships[0])
    report = demo.DemoReport(skipped=False, bank=ctx.bank)
    assert f"client {client_id}  institution {institution}  secret {secret}" in report.text()
    event = {"event_id": "demo-1", "kind": "repayment", "application_id": "00000000-0000-4000-8000-000000000000",
             "amount": "100.00", "on": AS_OF.isoformat()}
    r = await post_events(client, Bank(client_id, secret, ctx.townships[0]), event)
    assert r.status_code not in (401, 403), r.text


async def _demo_domains_are_alive(owner_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Every domain step left something a newcomer can browse, and the ledger still balances."""
    p = {"p": "969901%"}
    async with owner_sessionmaker() as session:
        async def one(sql: str) -> int:
            return int((await session.execute(text(sql), p)).scalar_one())

        states = {r[0] for r in await session.execute(text(
            "SELECT DISTINCT status FROM loan_application WHERE area_code LIKE :p"), p)}
        assert states == set(demo_domains.APPLICATION_STATES)
        # Each disbursed application has exactly its loan; each step row follows the workflow.
        assert await one("""SELECT count(*) FROM loan_application a JOIN loan l ON l.application_id = a.id
                            WHERE a.area_code LIKE :p AND a.status = 'disbursed' AND l.principal = a.amount""") == 6
        assert await one("SELECT count(*) FROM loan_quota WHERE area_code LIKE :p AND year = 2026") == 10
        assert await one("SELECT count(*) FROM loan_township_readiness WHERE area_code LIKE :p AND ready") == 9
        assert await one("SELECT count(*) FROM loan_certificate WHERE area_code LIKE :p AND status = 'issued'") > 250
        assert await one("SELECT count(*) FROM helping_unit WHERE area_code LIKE :p") == 8
        assert await one("SELECT count(*) FROM cadre WHERE area_code LIKE :p") == 400
        paired = await one("""SELECT count(DISTINCT p.household_id) FROM pairing p WHERE p.area_code LIKE :p""")
        in_need = await one("""SELECT count(*) FROM household WHERE area_code LIKE :p
                               AND status NOT IN ('exited', 'removed')""")
        assert in_need * 0.85 < paired < in_need
        assert await one("""SELECT count(*) FROM pairing p JOIN household h ON h.id = p.household_id
                            WHERE p.area_code LIKE :p AND h.status IN ('exited', 'removed')""") == 0
        assert await one("SELECT count(*) FROM visit WHERE area_code LIKE :p") > paired
        # The demo cadre user is a cadre with households of their own.
        assert await one("""SELECT count(*) FROM pairing p JOIN cadre c ON c.id = p.cadre_id
                            JOIN app_user u ON u.id = c.user_id WHERE u.username = 'demo969901_cadre'""") > 0
        pools = (await session.execute(text(
            "SELECT model, rate, fixed_amount FROM dividend_pool WHERE area_code LIKE :p ORDER BY model"), p)).all()
        assert pools == [("fixed", None, Decimal("1000.00")), ("rate", Decimal("0.030000"), None)]
        assert await one("SELECT count(*) FROM dividend_holding WHERE area_code LIKE :p") == 28 + 40
        projects = dict((await session.execute(text(
            "SELECT status, count(*) FROM project WHERE area_code LIKE :p GROUP BY 1"), p)).all())
        assert sum(projects.values()) >= 12
        assert len(projects) >= 9
        assert await one("SELECT count(*) FROM project_fund WHERE area_code LIKE :p AND movement = 'allocation'") >= 8
        assert await one("SELECT count(*) FROM subsidy_policy WHERE area_code = '969901000000'") == 1
        # 防返贫: households in every workflow state (one in its second cycle, two outside the registry),
        # claims in every state, the paid one the seed's leukaemia case, and a screening file applied.
        states = {r[0] for r in await session.execute(text(
            "SELECT DISTINCT status FROM monitored_household WHERE area_code LIKE :p"), p)}
        assert states == {s.value for s in monitoring_rules.Status}
        assert await one("SELECT max(cycle) FROM monitored_household WHERE area_code LIKE :p") == 2
        assert await one("SELECT count(*) FROM monitored_household WHERE area_code LIKE :p "
                         "AND household_id IS NULL") == 2
        claims = {r[0] for r in await session.execute(text(
            "SELECT DISTINCT status FROM insurance_claim WHERE area_code LIKE :p"), p)}
        assert claims == {s.value for s in monitoring_rules.ClaimStatus}
        assert await one("SELECT count(*) FROM insurance_claim WHERE area_code LIKE :p AND status = 'paid' "
                         "AND payable = 181209.09") == 1
        assert await one("SELECT count(*) FROM screening_row WHERE area_code LIKE :p") == 30
        assert (await ledger.check(session)).ok

