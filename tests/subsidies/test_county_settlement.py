"""A county's settlement as ONE job: every township run keyed to it settled together, in a number of
statements that does not grow with the townships, to the same fen as township by township."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import event, func, select

from fupin import jobs
from fupin.auth.roles import Role
from fupin.calendar import SHANGHAI, Quarter
from fupin.ledger.models import LedgerAccount
from fupin.subsidies import service
from fupin.subsidies.models import SubsidyPayout, SubsidyRun
from fupin_worker import kinds, runner
from fupin_worker.jobs.subsidies import settlement_due
from tests.factories import new_county, token_for
from tests.subsidies import factories as f

D = Decimal
Q3 = "2026Q3"


async def loans_in(sm, villages: list[str]) -> None:
    """test_cycle's township (hand-computed there): pays 2,005.33 on 4 loans, 2 late; expects 643.94
    (C1 385.94, C2 258.00)."""
    v1, v2 = villages
    h = [(await f.household(sm, v, head=f"李{i}"))[0] for i, v in enumerate((v1, v1, v2, v2, v2, v2))]
    await f.loan(sm, v1, household_id=h[0], principal="20000.00", disbursed=date(2026, 1, 10), due=date(2026, 12, 31),
                 repayments=[(date(2026, 7, 10), "20000.00")])
    await f.loan(sm, v1, household_id=h[1], principal="10000.00", disbursed=date(2025, 9, 1), due=date(2026, 8, 31),
                 repayments=[(date(2026, 8, 31), "10000.00")])
    await f.loan(sm, v2, household_id=h[2], principal="5000.00", disbursed=date(2025, 10, 1), due=date(2026, 9, 30),
                 repayments=[(date(2026, 10, 5), "5000.00")])
    await f.loan(sm, v1, enterprise="龙头企业乙", principal="100000.00", disbursed=date(2026, 3, 1), due=date(2026, 9, 1),
                 repayments=[(date(2026, 9, 1), "100000.00")])
    await f.loan(sm, v2, household_id=h[3], principal="8000.00", disbursed=date(2026, 1, 1), due=date(2026, 12, 1),
                 repayments=[(date(2026, 8, 1), "8000.00")], productive=False)
    await f.loan(sm, v2, household_id=h[4], principal="20000.00", disbursed=date(2026, 1, 10), due=date(2026, 12, 31),
                 repayments=[(date(2026, 4, 10), "10000.00"), (date(2026, 7, 10), "10000.00")])
    await f.loan(sm, v2, household_id=h[5], principal="10000.00", disbursed=date(2025, 9, 15), due=date(2026, 9, 15),
                 coop="C2")


async def request(client, app_sessionmaker, test_settings, headers, town: str, phase: str) -> dict:
    r = await client.post("/subsidy-runs", headers=headers, json={"township_code": town, "quarter": Q3, "phase": phase})
    assert r.status_code == 202, r.text
    assert await runner.execute(app_sessionmaker, test_settings, r.json()["job_key"]) == "done"
    return r.json()


async def balance(sm, code: str) -> Decimal:
    async with sm() as s:
        return (await s.scalar(select(LedgerAccount.balance).where(LedgerAccount.code == code))) or D("0")


async def run_counted(app_sessionmaker, test_settings, key: str) -> int:
    """Execute `key` through the runner; the number of SQL statements the whole delivery sent."""
    sync_engine = app_sessionmaker.kw["bind"].sync_engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    return len(seen)


async def test_one_job_settles_a_countys_townships_to_the_fen(
    client, owner_sessionmaker, app_sessionmaker, test_settings
):
    sm = owner_sessionmaker
    county = await new_county(sm, townships=3)
    t0, t1, t2 = county.townships
    await loans_in(sm, county.villages[t0])
    await loans_in(sm, county.villages[t1])
    fin = await token_for(sm, test_settings, role=Role.finance_bureau, area_code=county.code)
    # t0 allocated and pre-allocated; t1 never (its coops are topped up in full); t2 settled by hand first
    await request(client, app_sessionmaker, test_settings, fin, t0, "allocation")
    await request(client, app_sessionmaker, test_settings, fin, t0, "preallocation")
    own = await request(client, app_sessionmaker, test_settings, fin, t2, "settlement")

    async with sm() as s, s.begin():
        created = await service.ensure_county_settlement(s, county=county.code, townships=county.townships,
                                                         quarter=Quarter.parse(Q3), triggered_by="cron")
    assert created == 2  # t2 keeps its own run and job
    key = f"subsidy.settlement:{county.code}:{Q3}"
    async with sm() as s:
        runs = {r.area_code: r for r in (await s.scalars(select(SubsidyRun).where(
            SubsidyRun.area_code.in_(county.townships), SubsidyRun.phase == "settlement"))).all()}
        job = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key))
    assert {t: r.job_key for t, r in runs.items()} == {t0: key, t1: key, t2: own["job_key"]}
    assert (job.kind, job.area_code) == ("subsidy.settlement", county.code)

    assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
    assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"

    # each township's results and roster, visible as before to the township (the county's job itself, its
    # attempts and errors, to the county's roles: job rows are scoped by their area like every other row)
    views = {}
    for t in (t0, t1):
        hdr = await token_for(sm, test_settings, role=Role.township_finance, area_code=t)
        views[t] = (await client.get(f"/subsidy-runs/{runs[t].id}", headers=hdr)).json()
        assert (views[t]["status"], views[t]["job_key"]) == ("done", key)
        by_county = (await client.get(f"/subsidy-runs/{runs[t].id}", headers=fin)).json()
        assert (by_county["job_status"], by_county["attempts"]) == ("done", 1)
        roster = (await client.get(f"/subsidy-runs/{runs[t].id}/roster", headers=hdr)).json()
        assert (roster["total"], len(roster["rows"])) == ("2005.33", 4)
    assert [(views[t]["total_expected"], views[t]["total_paid"], views[t]["total_topped_up"],
             views[t]["total_returned"], views[t]["loans_paid"], views[t]["loans_late"]) for t in (t0, t1)] == [
        ("643.94", "2005.33", "318.79", "258.00", 4, 2),  # C1 paid 704.73 against 385.94; C2's 258.00 back
        ("643.94", "2005.33", "704.73", "0.00", 4, 2),  # no advance: every coop fen topped up
    ]
    async with sm() as s:
        n = await s.scalar(select(func.count()).select_from(SubsidyPayout).where(
            SubsidyPayout.run_id.in_([runs[t0].id, runs[t1].id])))
    assert n == 8
    assert await balance(sm, f"credit_coop:{t0}.C1:subsidy") == D("0.00")
    assert await balance(sm, f"credit_coop:{t0}.C2:subsidy") == D("0.00")
    assert await balance(sm, f"credit_coop:{t1}.C1:subsidy") == D("0.00")
    assert await balance(sm, f"township_finance:{t0}:subsidy") == D("258.00")
    assert await balance(sm, f"township_finance:{t1}:subsidy") == D("0.00")
    assert await balance(sm, f"finance_bureau:{county.code}:subsidy") == D("0.00")
    # t0 643.94 allocated + 318.79 + 1,300.60; t1 704.73 + 1,300.60; t2 (no loans) nothing
    assert await balance(sm, f"source:{county.code}:subsidy") == D("-4268.66")
    aud = await token_for(sm, test_settings, role=Role.auditor, area_code=county.code)
    assert (await client.get("/ledger/check", headers=aud)).json()["ok"] is True


async def test_statements_do_not_grow_with_the_townships(client, owner_sessionmaker, app_sessionmaker, test_settings):
    sm = owner_sessionmaker
    counts = []
    for townships in (1, 3):
        county = await new_county(sm, townships=townships)
        for t in county.townships:
            await loans_in(sm, county.villages[t])
        async with sm() as s, s.begin():
            await service.ensure_county_settlement(s, county=county.code, townships=county.townships,
                                                   quarter=Quarter.parse(Q3), triggered_by="cron")
        counts.append(await run_counted(app_sessionmaker, test_settings, f"subsidy.settlement:{county.code}:{Q3}"))
        async with sm() as s:
            paid = await s.scalar(select(func.sum(SubsidyPayout.amount)).join(
                SubsidyRun, SubsidyRun.id == SubsidyPayout.run_id).where(SubsidyRun.area_code.in_(county.townships)))
        assert paid == D("2005.33") * townships
    assert counts[0] == counts[1], counts


async def test_rerun_after_a_crash_pays_each_loan_once(client, owner_sessionmaker, app_sessionmaker, test_settings):
    sm = owner_sessionmaker
    county = await new_county(sm, townships=2)
    for t in county.townships:
        await loans_in(sm, county.villages[t])
    async with sm() as s, s.begin():
        await service.ensure_county_settlement(s, county=county.code, townships=county.townships,
                                               quarter=Quarter.parse(Q3), triggered_by="cron")
    key = f"subsidy.settlement:{county.code}:{Q3}"
    real = kinds.HANDLERS["subsidy.settlement"]

    async def crashing(session, job):
        await real(session, job)
        raise RuntimeError("worker killed")  # every township's effects written, then no commit

    kinds.HANDLERS["subsidy.settlement"] = crashing
    try:
        assert await runner.execute(app_sessionmaker, test_settings, key) == "failed"
    finally:
        kinds.HANDLERS["subsidy.settlement"] = real
    async with sm() as s:
        runs = (await s.scalars(select(SubsidyRun).where(SubsidyRun.job_key == key))).all()
        assert {r.status for r in runs} == {"pending"}
        assert await s.scalar(select(func.count()).select_from(SubsidyPayout).where(
            SubsidyPayout.run_id.in_([r.id for r in runs]))) == 0
    assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
    async with sm() as s:
        rows = (await s.execute(select(SubsidyPayout.loan_id, func.count()).where(
            SubsidyPayout.run_id.in_([r.id for r in runs])).group_by(SubsidyPayout.loan_id))).all()
        job = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == key))
    assert sorted(n for _, n in rows) == [1] * 8
    assert (job.attempts, job.result["townships"], job.result["paid"], job.result["loans_paid"]) == (2, 2, "4010.66", 8)
    assert await balance(sm, f"source:{county.code}:subsidy") == D("-4010.66")


async def test_the_plan_asks_for_one_settlement_job_per_county(owner_sessionmaker, app_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=3)
    due = settlement_due(datetime(2032, 4, 2, tzinfo=SHANGHAI))[0]  # settles 2032Q1: no other test's quarter
    async with owner_sessionmaker() as s, s.begin():
        await jobs.request_job(s, kind=due.kind, key=due.key, area_code="", args=due.args, requested_by="cron")
    assert await runner.execute(app_sessionmaker, test_settings, due.key) == "done"
    async with owner_sessionmaker() as s:
        keys = (await s.scalars(select(SubsidyRun.job_key).where(
            SubsidyRun.quarter == "2032Q1", SubsidyRun.area_code.in_(county.townships)))).all()
        job = await s.scalar(select(jobs.JobRun).where(jobs.JobRun.key == f"subsidy.settlement:{county.code}:2032Q1"))
        township_jobs = await s.scalar(select(func.count()).select_from(jobs.JobRun).where(
            jobs.JobRun.key.in_([f"subsidy.settlement:{t}:2032Q1" for t in county.townships])))
    assert keys == [f"subsidy.settlement:{county.code}:2032Q1"] * 3
    assert job is not None
    assert job.area_code == county.code
    assert township_jobs == 0
    # nothing repaid in that quarter: the county's job settles its three townships with nothing to pay
    assert await runner.execute(app_sessionmaker, test_settings, job.key) == "done"
