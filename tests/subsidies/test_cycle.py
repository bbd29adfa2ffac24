"""The quarterly cycle end to end: API requests, the worker runner, the ledger, the roster."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
from sqlalchemy import func, select

from fupin import jobs
from fupin.auth.roles import Role
from fupin.ledger.models import LedgerAccount
from fupin.subsidies.models import SubsidyPayout
from fupin_worker import kinds, runner
from tests.factories import new_county, token_for
from tests.subsidies import factories as f

D = Decimal
Q3 = "2026Q3"
ROOT = Path(__file__).resolve().parents[2]


async def arrange(sm):
    """One township, two coops; hand-computed entitlements in comments (2.58%, actual/365)."""
    county = await new_county(sm)
    town = county.townships[0]
    v1, v2 = county.villages[town]
    h1, id1 = await f.household(sm, v1, head="王一")
    h2, _ = await f.household(sm, v1, head="王二")
    h3, _ = await f.household(sm, v2, head="王三")
    h4, _ = await f.household(sm, v2, head="王四")
    h5, _ = await f.household(sm, v2, head="王五")
    h6, _ = await f.household(sm, v2, head="王六")
    loans = {
        # 20,000 × 0.0258 × 181/365 = 255.88 (due in Q4, repaid in Q3: settled in Q3)
        "A": await f.loan(sm, v1, household_id=h1, principal="20000.00", disbursed=date(2026, 1, 10),
                          due=date(2026, 12, 31), repayments=[(date(2026, 7, 10), "20000.00")]),
        # 10,000 × 0.0258 × 364/365 = 257.29, due and repaid 2026-08-31 (expected in Q3 too)
        "B": await f.loan(sm, v1, household_id=h2, principal="10000.00", disbursed=date(2025, 9, 1),
                          due=date(2026, 8, 31), repayments=[(date(2026, 8, 31), "10000.00")]),
        # due 2026-09-30, repaid 2026-10-05: late, nothing (expected 5,000 × 0.0258 × 364/365 = 128.65)
        "C": await f.loan(sm, v2, household_id=h3, principal="5000.00", disbursed=date(2025, 10, 1),
                          due=date(2026, 9, 30), repayments=[(date(2026, 10, 5), "5000.00")]),
        # enterprise: 100,000 × 0.0258 × 184/365 = 1,300.60, paid by the county finance bureau
        "D": await f.loan(sm, v1, enterprise="龙头企业甲", principal="100000.00", disbursed=date(2026, 3, 1),
                          due=date(2026, 9, 1), repayments=[(date(2026, 9, 1), "100000.00")]),
        # non-productive, on time: nothing
        "E": await f.loan(sm, v2, household_id=h4, principal="8000.00", disbursed=date(2026, 1, 1),
                          due=date(2026, 12, 1), repayments=[(date(2026, 8, 1), "8000.00")], productive=False),
        # partial: 10,000 after 90 days + 10,000 after 181 days → 191.56
        "F": await f.loan(sm, v2, household_id=h5, principal="20000.00", disbursed=date(2026, 1, 10),
                          due=date(2026, 12, 31),
                          repayments=[(date(2026, 4, 10), "10000.00"), (date(2026, 7, 10), "10000.00")]),
        # second coop: due 2026-09-15, never repaid: expected 10,000 × 0.0258 × 365/365 = 258.00, returned
        "G": await f.loan(sm, v2, household_id=h6, principal="10000.00", disbursed=date(2025, 9, 15),
                          due=date(2026, 9, 15), coop="C2"),
    }
    return county, town, loans, id1


async def run_phase(client, app_sessionmaker, test_settings, headers, town, phase):
    r = await client.post("/subsidy-runs", headers=headers, json={"township_code": town, "quarter": Q3, "phase": phase})
    assert r.status_code == 202, r.text
    assert await runner.execute(app_sessionmaker, test_settings, r.json()["job_key"]) == "done"
    return r.json()["id"]


async def assert_ledger_ok(client, sm, test_settings, county_code):
    hdr = await token_for(sm, test_settings, role=Role.auditor, area_code=county_code)
    r = await client.get("/ledger/check", headers=hdr)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body
    assert body["total_debit"] == body["total_credit"]


async def balance(sm, code: str) -> Decimal:
    async with sm() as s:
        return (await s.scalar(select(LedgerAccount.balance).where(LedgerAccount.code == code))) or D("0")


class TestQuarter:
    async def test_full_cycle_pays_exact_entitlements_and_balances(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, id1 = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.township_finance, area_code=town)
        alloc = await run_phase(client, app_sessionmaker, test_settings, fin, town, "allocation")
        r = await client.get(f"/subsidy-runs/{alloc}", headers=fin)
        assert (r.json()["status"], r.json()["job_status"], r.json()["attempts"]) == ("done", "done", 1)
        assert D(r.json()["total_expected"]) == D("643.94")  # 257.29 + 128.65 + 258.00
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "preallocation")
        assert await balance(sm, f"credit_coop:{town}.C1:subsidy") == D("385.94")
        assert await balance(sm, f"credit_coop:{town}.C2:subsidy") == D("258.00")
        settle = await run_phase(client, app_sessionmaker, test_settings, fin, town, "settlement")

        run = (await client.get(f"/subsidy-runs/{settle}", headers=fin)).json()
        assert D(run["total_paid"]) == D("2005.33")  # 255.88 + 257.29 + 191.56 + 1300.60
        assert run["loans_paid"] == 4
        assert run["loans_late"] == 2  # C (repaid late) and G (unpaid)
        assert D(run["total_topped_up"]) == D("318.79")  # C1 paid 704.73 against an advance of 385.94
        assert D(run["total_returned"]) == D("258.00")  # C2's advance, unused

        async with sm() as s:
            paid = dict((await s.execute(select(SubsidyPayout.loan_id, SubsidyPayout.amount)
                                         .where(SubsidyPayout.run_id == run["id"]))).all())
        assert {k: paid.get(v) for k, v in loans.items()} == {
            "A": D("255.88"), "B": D("257.29"), "C": None, "D": D("1300.60"), "E": None, "F": D("191.56"), "G": None}
        assert await balance(sm, f"credit_coop:{town}.C1:subsidy") == D("0.00")
        assert await balance(sm, f"credit_coop:{town}.C2:subsidy") == D("0.00")
        assert await balance(sm, f"township_finance:{town}:subsidy") == D("258.00")
        assert await balance(sm, f"finance_bureau:{county.code}:subsidy") == D("0.00")
        assert await balance(sm, f"enterprise:{loans['D']}:subsidy") == D("1300.60")
        # the county budget source paid everything that left it: 643.94 + 318.79 + 1300.60
        assert await balance(sm, f"source:{county.code}:subsidy") == D("-2263.33")

        r = await client.get(f"/loans/{loans['A']}/subsidy", headers=fin)
        assert r.status_code == 200, r.text
        assert r.json()["amount"] == "255.88"
        assert r.json()["days"] == 181
        assert r.json()["paid"] is True
        r = await client.get(f"/loans/{loans['C']}/subsidy", headers=fin)
        assert (r.json()["amount"], r.json()["reason"], r.json()["paid"]) == ("0.00", "late", False)

        roster = (await client.get(f"/subsidy-runs/{settle}/roster", headers=fin)).json()
        assert roster["total"] == "2005.33"
        row = next(x for x in roster["rows"] if x["loan_id"] == str(loans["A"]))
        assert row["id_number_masked"] == id1[:4] + "**********" + id1[-4:]
        assert row["head_name"] == "王一"
        assert (row["principal"], row["days"], row["amount"]) == ("20000.00", 181, "255.88")
        assert id1 not in str(roster)
        c1 = (await client.get(f"/subsidy-runs/{settle}/roster?coop=C1", headers=fin)).json()
        assert (c1["total"], len(c1["rows"])) == ("704.73", 3)  # the enterprise loan is paid by the bureau
        await assert_ledger_ok(client, sm, test_settings, county.code)

        r = await client.get(f"/subsidy-runs/{settle}/roster?format=xlsx", headers=fin)
        assert r.status_code == 200
        r2 = await client.get(f"/subsidy-runs/{settle}/roster", headers={
            **fin, "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
        assert r2.content[:2] == b"PK"
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        values = list(ws.iter_rows(values_only=True))
        assert len(values) == 1 + 4 + 1
        assert D(str(values[-1][8])) == D("2005.33")
        assert id1 not in str(values)

    async def test_rerun_pays_nothing_and_new_request_conflicts(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
        for phase in ("allocation", "preallocation", "settlement"):
            await run_phase(client, app_sessionmaker, test_settings, fin, town, phase)
        key = f"subsidy.settlement:{town}:{Q3}"
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": Q3, "phase": "settlement"})
        assert r.status_code == 409
        assert r.json()["code"] == "subsidy.run_exists"
        async with sm() as s:
            n = await s.scalar(select(func.count()).select_from(SubsidyPayout)
                               .where(SubsidyPayout.loan_id.in_(list(loans.values()))))
        assert n == 4
        await assert_ledger_ok(client, sm, test_settings, county.code)

    async def test_crash_mid_settlement_then_rerun_pays_each_loan_once(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.township_finance, area_code=town)
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "allocation")
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "preallocation")
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": Q3, "phase": "settlement"})
        key = r.json()["job_key"]
        real = kinds.HANDLERS["subsidy.settlement"]

        async def crashing(session, job):
            await real(session, job)  # payouts, entries and lines all written …
            raise RuntimeError("worker killed")  # … then the process dies before commit

        kinds.HANDLERS["subsidy.settlement"] = crashing
        try:
            assert await runner.execute(app_sessionmaker, test_settings, key) == "failed"
        finally:
            kinds.HANDLERS["subsidy.settlement"] = real
        async with sm() as s:
            assert await s.scalar(select(func.count()).select_from(SubsidyPayout)
                                  .where(SubsidyPayout.loan_id.in_(list(loans.values())))) == 0
        assert await balance(sm, f"credit_coop:{town}.C1:subsidy") == D("385.94")
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"
        async with sm() as s:
            rows = (await s.execute(select(SubsidyPayout.loan_id, func.count())
                                    .where(SubsidyPayout.loan_id.in_(list(loans.values())))
                                    .group_by(SubsidyPayout.loan_id))).all()
        assert sorted(n for _, n in rows) == [1, 1, 1, 1]
        assert {lid for lid, _ in rows} == {loans[k] for k in "ABDF"}
        assert await balance(sm, f"household:{(await household_of(sm, loans['A']))}:subsidy") == D("255.88")
        await assert_ledger_ok(client, sm, test_settings, county.code)

    async def test_settlement_before_quarter_end_is_refused(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        town = county.townships[0]
        fin = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=town)
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": "2099Q1", "phase": "settlement"})
        assert r.status_code == 422
        assert r.json()["code"] == "subsidy.quarter_not_ended"
        bureau = await token_for(owner_sessionmaker, test_settings, role=Role.finance_bureau, area_code=county.code)
        r = await client.post("/subsidy-runs", headers=bureau,
                              json={"township_code": county.code[:6] + "990000", "quarter": Q3, "phase": "allocation"})
        assert r.status_code == 404  # no such township


async def household_of(sm, loan_id):
    from fupin.loans.models import Loan

    async with sm() as s:
        return await s.scalar(select(Loan.household_id).where(Loan.id == loan_id))


class TestScope:
    async def test_other_township_runs_accounts_and_loans_are_invisible(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, _ = await arrange(sm)
        other = county.townships[1]
        fin = await token_for(sm, test_settings, role=Role.township_finance, area_code=town)
        for phase in ("allocation", "preallocation", "settlement"):
            settle = await run_phase(client, app_sessionmaker, test_settings, fin, town, phase)
        stranger = await token_for(sm, test_settings, role=Role.township_finance, area_code=other)
        assert (await client.get(f"/subsidy-runs/{settle}", headers=stranger)).status_code == 404
        assert (await client.get(f"/subsidy-runs/{settle}/roster", headers=stranger)).status_code == 404
        assert (await client.get(f"/loans/{loans['A']}/subsidy", headers=stranger)).status_code == 404
        listed = (await client.get("/subsidy-runs", headers=stranger)).json()["items"]
        assert listed == []
        async with sm() as s:
            coop_id = await s.scalar(select(LedgerAccount.id).where(LedgerAccount.code == f"township_finance:{town}:subsidy"))
        assert (await client.get(f"/ledger/accounts/{coop_id}", headers=stranger)).status_code == 404
        codes = [a["code"] for a in (await client.get("/ledger/accounts?limit=500", headers=stranger)).json()["items"]]
        assert f"township_finance:{town}:subsidy" not in codes
        # the owner sees it, with its entries
        mine = await client.get(f"/ledger/accounts/{coop_id}", headers=fin)
        assert mine.status_code == 200
        assert mine.json()["balance"] == "258.00"
        assert {e["kind"] for e in mine.json()["entries"]} >= {"subsidy.allocate", "subsidy.preallocate"}
        # a township may not request another township's run
        r = await client.post("/subsidy-runs", headers=stranger,
                              json={"township_code": town, "quarter": "2026Q2", "phase": "allocation"})
        assert r.status_code == 404
        # a coop may read but not request; the ledger check is for county roles
        coop = await token_for(sm, test_settings, role=Role.credit_coop, area_code=town)
        assert (await client.get("/ledger/check", headers=coop)).status_code == 403
        r = await client.post("/subsidy-runs", headers=coop,
                              json={"township_code": town, "quarter": "2026Q2", "phase": "allocation"})
        assert r.status_code == 403


class TestConcurrency:
    async def test_two_workers_on_one_settlement_pay_each_loan_once(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.township_finance, area_code=town)
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "allocation")
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "preallocation")
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": Q3, "phase": "settlement"})
        key = r.json()["job_key"]
        outcomes = await asyncio.gather(*(runner.execute(app_sessionmaker, test_settings, key) for _ in range(3)))
        assert outcomes.count("done") == 1
        assert set(outcomes) <= {"done", "busy", "already_done"}
        async with sm() as s:
            n = await s.scalar(select(func.count()).select_from(SubsidyPayout)
                               .where(SubsidyPayout.loan_id.in_(list(loans.values()))))
        assert n == 4
        await assert_ledger_ok(client, sm, test_settings, county.code)


class TestKill:
    async def test_worker_killed_mid_settlement_then_restarted_pays_each_loan_once(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.township_finance, area_code=town)
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "allocation")
        await run_phase(client, app_sessionmaker, test_settings, fin, town, "preallocation")
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": Q3, "phase": "settlement"})
        key = r.json()["job_key"]
        env = {**os.environ, "FUPIN_FAULT_SLEEP_SECONDS": "300",
               "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("shared", "services/api", "services/worker", "."))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools.worker_to_kill", key, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
            assert line.strip() == b"EFFECTS-WRITTEN"
        finally:
            proc.kill()  # SIGKILL while the settlement's transaction is open
            await proc.wait()
        async with sm() as s:
            assert (await s.scalar(select(jobs.JobRun.status).where(jobs.JobRun.key == key))) == "running"
            assert await s.scalar(select(func.count()).select_from(SubsidyPayout)
                                  .where(SubsidyPayout.loan_id.in_(list(loans.values())))) == 0
        # the restarted worker (here: the runner in this process) picks the abandoned run up
        # (it knows the first worker is dead, so it need not wait job_stale_seconds for the run to count as abandoned)
        restarted = test_settings.model_copy(update={"job_stale_seconds": 0})
        assert await runner.execute(app_sessionmaker, restarted, key) == "done"
        async with sm() as s:
            rows = (await s.execute(select(SubsidyPayout.loan_id, func.count())
                                    .where(SubsidyPayout.loan_id.in_(list(loans.values())))
                                    .group_by(SubsidyPayout.loan_id))).all()
        assert sorted(n for _, n in rows) == [1, 1, 1, 1]
        run = (await client.get(f"/subsidy-runs/{r.json()['id']}", headers=fin)).json()
        assert (run["status"], run["total_paid"], run["attempts"]) == ("done", "2005.33", 2)
        await assert_ledger_ok(client, sm, test_settings, county.code)


class TestOrder:
    async def test_a_waiting_preallocation_starts_when_its_allocation_is_done(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, _loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
        pre = (await client.post("/subsidy-runs", headers=fin,
                                 json={"township_code": town, "quarter": Q3, "phase": "preallocation"})).json()
        assert await runner.execute(app_sessionmaker, test_settings, pre["job_key"]) == "waiting"
        alloc = (await client.post("/subsidy-runs", headers=fin,
                                   json={"township_code": town, "quarter": Q3, "phase": "allocation"})).json()
        delivered: list[list[str]] = []

        async def deliver(keys: list[str]) -> None:
            delivered.append(keys)

        assert await runner.execute(app_sessionmaker, test_settings, alloc["job_key"], deliver=deliver) == "done"
        assert delivered == [[pre["job_key"]]]  # released in the allocation's transaction, handed over after it
        detail = (await client.get(f"/subsidy-runs/{pre['id']}", headers=fin)).json()
        assert (detail["job_status"], detail["waiting_for"]) == ("pending", None)
        assert await runner.execute(app_sessionmaker, test_settings, pre["job_key"]) == "done"
        detail = (await client.get(f"/subsidy-runs/{pre['id']}", headers=fin)).json()
        assert (detail["status"], detail["job_status"], detail["attempts"]) == ("done", "done", 1)

    async def test_preallocation_waits_for_allocation_and_settlement_without_advance_tops_up(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        sm = owner_sessionmaker
        county, town, _loans, _ = await arrange(sm)
        fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
        r = await client.post("/subsidy-runs", headers=fin,
                              json={"township_code": town, "quarter": Q3, "phase": "preallocation"})
        pre_key = r.json()["job_key"]
        # Not a failure: the run waits for the allocation, spends no attempt, and shows what it waits for.
        assert await runner.execute(app_sessionmaker, test_settings, pre_key) == "waiting"
        detail = (await client.get(f"/subsidy-runs/{r.json()['id']}", headers=fin)).json()
        assert (detail["status"], detail["job_status"], detail["attempts"]) == ("pending", "waiting", 0)
        assert detail["waiting_for"] == f"subsidy.allocation:{town}:{Q3}"
        assert "allocation" in detail["waiting_reason"]
        assert detail["last_error"] is None
        # settlement with no advance at all: every fen comes down the chain as a top-up
        settle = await run_phase(client, app_sessionmaker, test_settings, fin, town, "settlement")
        run = (await client.get(f"/subsidy-runs/{settle}", headers=fin)).json()
        assert (run["total_paid"], run["total_topped_up"], run["total_returned"]) == ("2005.33", "704.73", "0.00")
        assert await balance(sm, f"credit_coop:{town}.C1:subsidy") == D("0.00")
        await assert_ledger_ok(client, sm, test_settings, county.code)
