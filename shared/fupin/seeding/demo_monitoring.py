"""Demo step for poverty-return prevention (防返贫): the county's monitoring policies (a line per year),
poverty-prevention insurance for last year and this one with premiums on the ledger, a medical screening
file, monitored households in every workflow state (one monitored again after elimination, two outside
the registry), measures (one household left without, so the flag shows) and claims in every state.

Everything goes through the domain's own service functions, so every rule, deadline and audit record
holds. Dates are drawn back from `ctx.as_of`. Imported through `fupin.seeding.demo.STEP_MODULES`.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from fupin.areas.scope import bind, within_sql
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.monitoring import insurance, measures, policy, screening, service, workflow
from fupin.monitoring.insurance_schemas import BillIn, ClaimCreate, InsurancePolicyCreate, TierIn
from fupin.monitoring.models import MonitoredHousehold
from fupin.monitoring.rules import (
    MeasureKind,
    MonitoringKind,
    RiskCause,
    ScreeningSource,
    Step,
    WarningSource,
)
from fupin.monitoring.schemas import (
    EliminationIn,
    LivingChecks,
    MeasureCreate,
    MonitoredHouseholdCreate,
    PersonIn,
    StepIn,
    VerificationIn,
    WarningCreate,
)
from fupin.seeding import idcard, names
from fupin.seeding.demo import DemoContext, register

# The walk to each state, in order; the elimination steps come months after the decision.
BEFORE = [Step.verify, Step.village_review, Step.township_check]
PATHS: dict[str, list[Step]] = {
    "warned": [], "verified": BEFORE[:1], "village_reviewed": BEFORE[:2], "township_checked": BEFORE,
    "monitored": [*BEFORE, Step.decide_monitor], "dismissed": [*BEFORE, Step.decide_dismiss],
    "elimination_proposed": [*BEFORE, Step.decide_monitor, Step.propose_elimination],
    "elimination_checked": [*BEFORE, Step.decide_monitor, Step.propose_elimination,
                            Step.township_confirm_elimination],
    "eliminated": [*BEFORE, Step.decide_monitor, Step.propose_elimination, Step.township_confirm_elimination,
                   Step.decide_elimination],
}
ROLE = {Step.verify: Role.village_committee, Step.village_review: Role.village_committee,
        Step.propose_elimination: Role.village_committee, Step.township_check: Role.township_station,
        Step.township_confirm_elimination: Role.township_station}
OPINION = {Step.village_review: "村民代表会议评议,情况属实", Step.township_check: "经乡镇审核,同意上报",
           Step.decide_monitor: "纳入防返贫监测对象", Step.decide_dismiss: "收入稳定,不纳入监测",
           Step.propose_elimination: "收入稳定超过监测标准,两不愁三保障无缺口",
           Step.township_confirm_elimination: "同意风险消除", Step.decide_elimination: "确认风险消除"}
ALL_GOOD = LivingChecks(food=True, clothing=True, compulsory_education=True, basic_medical=True,
                        housing_safety=True, drinking_water=True)
SEED_TIERS = [TierIn(start=Decimal("0"), rate=Decimal("0.3")), TierIn(start=Decimal("40000"), rate=Decimal("0.6")),
              TierIn(start=Decimal("100000"), rate=Decimal("0.9"))]


def _as(ctx: DemoContext, role: Role) -> Principal:
    return Principal(user_id=None, username=f"demo_{role.value}", role=role, area_code=ctx.county)


async def _rows(ctx: DemoContext, sql: str) -> list[Any]:
    return list((await ctx.session.execute(text(sql), bind("p", ctx.county))).all())


async def _policies(ctx: DemoContext) -> int:
    """A monitoring line per year and an insurance policy per year (10 % of the rural population at ¥50)."""
    office, finance = _as(ctx, Role.poverty_office), _as(ctx, Role.finance_bureau)
    year = ctx.as_of.year
    for y, line in ((year - 1, "5800.00"), (year, "6000.00")):
        await policy.create_policy(ctx.session, principal=office, area_code=ctx.county, effective_from=date(y, 1, 1),
                                   income_line=Decimal(line), expense_ratio=Decimal("0.5"), decision_days=15,
                                   elimination_months=6, measure_days=15, note=f"{y}年度防返贫监测标准")
    population = (await _rows(ctx, f"SELECT coalesce(sum(population), 0) FROM area WHERE {within_sql('code', 'p')}"))[0][0]
    insured = max(int(population) // 10, 1)
    for y in (year - 1, year):
        body = InsurancePolicyCreate(
            area_code=ctx.county, name=f"{y}年度防贫保险", insurer="太平洋财险", effective_from=date(y, 1, 1),
            effective_to=date(y, 12, 31), insured_persons=insured, premium_per_person=Decimal("50.00"),
            deductible=Decimal("20000.00"), annual_cap=Decimal("300000.00"), tiers=SEED_TIERS)
        created = await insurance.create_policy(ctx.session, principal=office, body=body)
        await insurance.post_premium(ctx.session, principal=finance, policy_id=created.id,
                                     on=min(date(y, 1, 10), ctx.as_of))
    return insured


async def _walk(ctx: DemoContext, mh_id: uuid.UUID, steps: list[Step], start: date) -> None:
    day = start
    for step in steps:
        late = step in (Step.propose_elimination, Step.township_confirm_elimination, Step.decide_elimination)
        day = ctx.as_of - timedelta(days={Step.propose_elimination: 12, Step.township_confirm_elimination: 8,
                                          Step.decide_elimination: 5}[step]) if late else day + timedelta(days=2)
        body = StepIn(step=step, on=day, opinion=OPINION.get(step, ""),
                      verification=VerificationIn(persons=3, income_per_capita=Decimal(ctx.rng.randrange(4200, 5900)),
                                                  medical_expense=Decimal(ctx.rng.randrange(8000, 40000)),
                                                  checks=ALL_GOOD) if step is Step.verify else None,
                      elimination=EliminationIn(income_per_capita=Decimal("7200.00"),
                                                stable_since=ctx.as_of - timedelta(days=220), checks=ALL_GOOD)
                      if step is Step.propose_elimination else None)
        await workflow.take_step(ctx.session, principal=_as(ctx, ROLE.get(step, Role.poverty_office)),
                                 monitored_household_id=mh_id, body=body)


async def _registry_households(ctx: DemoContext) -> dict[str, uuid.UUID]:
    """One exited household per state, warned about 100 days ago (a cause each), walked to its state."""
    homes = await _rows(ctx, f"SELECT id FROM household WHERE {within_sql('area_code', 'p')} AND status = 'exited' "
                             "ORDER BY household_no LIMIT 60")
    chosen = ctx.rng.sample([h[0] for h in homes], len(PATHS) + 1)
    causes = list(RiskCause)
    out: dict[str, uuid.UUID] = {}
    for k, (state, steps) in enumerate([*PATHS.items(), ("monitored_again", PATHS["eliminated"])]):
        raised = ctx.as_of - timedelta(days=100 - k)
        warning = await service.raise_warning(ctx.session, principal=_as(ctx, Role.village_committee), body=WarningCreate(
            source=WarningSource.self_report, household_id=chosen[k], cause=causes[k % len(causes)],
            detail="农户本人申报,村委会受理", raised_on=raised))
        await _walk(ctx, warning.monitored_household_id, steps, raised)
        out[state] = warning.monitored_household_id
    await service.raise_warning(ctx.session, principal=_as(ctx, Role.village_committee), body=WarningCreate(
        source=WarningSource.self_report, monitored_household_id=out["monitored_again"], cause=RiskCause.accident,
        detail="再次发生意外,重新纳入监测", raised_on=ctx.as_of - timedelta(days=2)))
    return out


async def _outside_registry(ctx: DemoContext) -> list[uuid.UUID]:
    """A 非贫低收入户 still being verified, and a family in sudden difficulty the county decided to monitor."""
    out = []
    for k, kind in enumerate((MonitoringKind.marginal, MonitoringKind.sudden_hardship)):
        village = ctx.villages[3 + k]
        family = names.person(ctx.rng, "M")[:1]
        people = [PersonIn(name=names.person(ctx.rng, sex, surname=family), relation=rel,
                           id_number=idcard.make_id(village[:6], date(1975 + 12 * i, 3, 1 + k), 901 + 2 * i + k))
                  for i, (rel, sex) in enumerate((("户主", "M"), ("子女", "F")))]
        reported = ctx.as_of - timedelta(days=60 - k)
        mh = await service.enter_household(ctx.session, principal=_as(ctx, Role.village_committee),
                                           body=MonitoredHouseholdCreate(
            area_code=village, kind=kind, persons=people, income_per_capita=Decimal("4600.00"),
            cause=RiskCause.illness, detail="患急性淋巴细胞白血病,住院费用高", reported_on=reported))
        if kind is MonitoringKind.sudden_hardship:
            await _walk(ctx, mh.id, PATHS["monitored"], reported)
        out.append(mh.id)
    return out


async def _measures(ctx: DemoContext, households: list[uuid.UUID]) -> int:
    """Measures for all but the last: it is left without, so the overdue flag has something to show."""
    for mh_id in households[:-1]:
        mh = await ctx.session.get(MonitoredHousehold, mh_id)
        assert mh is not None
        assert mh.decided_on is not None
        await measures.add_measure(ctx.session, principal=_as(ctx, Role.township_station), monitored_household_id=mh_id,
                                   body=MeasureCreate(kind=MeasureKind.medical_aid, description="落实医疗救助和大病保险",
                                                      responsible_unit="县医疗保障局",
                                                      started_on=mh.decided_on + timedelta(days=3)))
    return len(households) - 1


async def _claims(ctx: DemoContext, monitored: list[uuid.UUID]) -> dict[str, uuid.UUID]:
    """One claim in each state: submitted, assessed, approved, paid (the seed's leukaemia case), rejected."""
    cadre = (await _rows(ctx, f"SELECT id FROM cadre WHERE {within_sql('area_code', 'p')} AND status = 'active' ORDER BY id LIMIT 1"))
    states = ["paid", "approved", "assessed", "submitted", "rejected"]
    out: dict[str, uuid.UUID] = {}
    for k, state in enumerate(states):
        mh_id = monitored[k % len(monitored)]
        person = await _person(ctx, mh_id)
        bill_day = ctx.as_of - timedelta(days=30 - k)
        oop = Decimal("268010.10") if state == "paid" else Decimal(ctx.rng.randrange(25000, 90000))
        claim = await insurance.submit_claim(ctx.session, principal=_as(ctx, Role.village_committee), body=ClaimCreate(
            monitored_household_id=mh_id, person_id=person, submitted_on=bill_day + timedelta(days=1),
            bills=[BillIn(hospital="县人民医院", bill_no=f"DEMO-{bill_day:%Y%m%d}-{k}", bill_date=bill_day,
                          total_cost=oop * 2 + Decimal("51495.11"), out_of_pocket=oop)]))
        day = bill_day + timedelta(days=2)
        if state == "rejected":
            await insurance.reject(ctx.session, principal=_as(ctx, Role.poverty_office), claim_id=claim.id, on=day,
                                   opinion="自付费用已由大病保险全额报销")
        if state in ("assessed", "approved", "paid"):
            await insurance.assess(ctx.session, principal=_as(ctx, Role.poverty_office), claim_id=claim.id, on=day,
                                   opinion="票据核实无误")
        if state in ("approved", "paid"):
            await insurance.approve(ctx.session, principal=_as(ctx, Role.finance_bureau), claim_id=claim.id, on=day,
                                    opinion="同意赔付")
        if state == "paid":
            await insurance.pay(ctx.session, principal=_as(ctx, Role.finance_bureau), claim_id=claim.id, on=day,
                                opinion="已支付", cadre_id=cadre[0][0] if cadre else None)
        out[state] = claim.id
    return out


async def _person(ctx: DemoContext, mh_id: uuid.UUID) -> uuid.UUID:
    rows = await ctx.session.execute(text(
        "SELECT m.id FROM monitored_household h JOIN household_member m ON m.household_id = h.household_id "
        "AND m.active WHERE h.id = :h UNION ALL SELECT p.id FROM monitored_person p "
        "WHERE p.monitored_household_id = :h AND p.active ORDER BY 1 LIMIT 1"), {"h": mh_id})
    return uuid.UUID(str(rows.scalar_one()))


async def _screening(ctx: DemoContext) -> str:
    """A small medical-insurance file: members of exited households (some above half their household's
    income) and people of the county the registry does not know."""
    members = await _rows(ctx, "SELECT m.id_number, m.name FROM household_member m JOIN household h "
                               f"ON h.id = m.household_id WHERE {within_sql('m.area_code', 'p')} AND m.active "
                               "AND h.status = 'exited' ORDER BY m.id_number LIMIT 400")
    picked = ctx.rng.sample(members, 24)
    day = ctx.as_of - timedelta(days=45)
    lines = ["身份证号,姓名,金额,日期"]
    lines += [f"{n},{name},{ctx.rng.randrange(500, 60000)}.{ctx.rng.randrange(100):02d},{day}" for n, name in picked]
    lines += [f"{idcard.make_id(ctx.county[:6], date(1950 + k, 5, 5), 777)},外县人员,1200.00,{day}" for k in range(6)]
    s = await screening.upload(ctx.session, principal=_as(ctx, Role.poverty_office), area_code=ctx.county,
                               source=ScreeningSource.medical, content="\n".join(lines).encode(),
                               filename=f"医保自付费用{day:%Y%m}.csv", received_on=day + timedelta(days=1))
    return f"{s.rows} rows ({s.warnings} warnings, {s.below_threshold} below the threshold, {s.unmatched} unmatched)"


async def _monitoring(ctx: DemoContext) -> str:
    insured = await _policies(ctx)
    screened = await _screening(ctx)
    states = await _registry_households(ctx)
    outside = await _outside_registry(ctx)
    monitored = [states["monitored"], outside[1], states["elimination_proposed"]]
    with_measures = await _measures(ctx, monitored)
    claims = await _claims(ctx, monitored)
    counts = await _rows(ctx, f"SELECT status, count(*) FROM monitored_household WHERE {within_sql('area_code', 'p')} "
                              "GROUP BY 1 ORDER BY 1")
    return (f"monitoring: insurance for {insured:,} persons a year, screening of {screened}; "
            f"{sum(n for _, n in counts)} monitored households (" + ", ".join(f"{s} {n}" for s, n in counts)
            + f"), {with_measures} with measures, claims {', '.join(claims)}")


register("monitoring", _monitoring)
