"""Demo steps for the domains: loan configuration, certificates and applications in every workflow state;
helping units, cadres, pairings and visits; two dividend pools with holdings; a dozen projects across their
lifecycle; the county's subsidy policy.

The workflow rows go through each domain's own service functions (so every rule and audit record holds);
the volume rows (certificates, cadres, pairings, visits) are set-based inserts. Everything is drawn from
`ctx.rng`, so the same seed gives the same demo. Imported through `fupin.seeding.demo.STEP_MODULES`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import bind, within_sql
from fupin.auth.models import User
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.dividends import service as dividends
from fupin.loans import approval
from fupin.loans import service as loans
from fupin.loans.models import Loan, LoanApplicationStep, LoanCertificate, LoanNotification
from fupin.loans.postings import add_months
from fupin.pairing import structure
from fupin.pairing.access import EXITED
from fupin.pairing.models import Cadre, Pairing, VillageAssignment, Visit, WorkTeam
from fupin.projects import beneficiaries as project_beneficiaries
from fupin.projects import funds as project_funds
from fupin.projects import service as projects
from fupin.projects.schemas import (
    BenefitKind,
    FundCreate,
    HouseholdBenefitIn,
    Kind,
    Movement,
    NoticeStage,
    PayeeKind,
    ProjectCreate,
    Quantity,
    Source,
    Status,
)
from fupin.seeding import names
from fupin.seeding.demo import DemoContext, register
from fupin.subsidies import service as subsidies

APPLICATION_STATES = (
    "submitted", "village_reviewed", "station_reviewed", "coop_assessed", "approved", "rejected", "disbursed",
)
PER_STATE = 6
CADRES_PER_VILLAGE = 4
UNITS = (
    ("县扶贫开发办公室", "bureau", "county"), ("县财政局", "bureau", "county"), ("县农业农村局", "bureau", "county"),
    ("县交通运输局", "bureau", "county"), ("县第一中学", "school", "county"), ("县人民医院", "other", "county"),
    ("州供电局", "enterprise", "city"), ("省农村信用社联合社", "enterprise", "province"),
)
LABOUR = ("ordinary", "skilled", "weak")


def _uuid(ctx: DemoContext) -> uuid.UUID:
    return uuid.UUID(int=ctx.rng.getrandbits(128), version=4)


def _as(ctx: DemoContext, role: Role) -> Principal:
    """The demo user of `role`, acting county-wide (the demo's clerks work for every township)."""
    return Principal(user_id=None, username=f"demo_{role.value}", role=role, area_code=ctx.county)


def _in_county(ctx: DemoContext) -> dict[str, str]:
    """Parameters of `within_sql(column, "p")`: the demo county's codes, as an index range."""
    return bind("p", ctx.county)


@dataclass(frozen=True)
class _Home:
    id: uuid.UUID
    village: str
    status: str
    category: str


async def _homes(session: AsyncSession, ctx: DemoContext, where: str = "TRUE") -> list[_Home]:
    rows = await session.execute(text(
        f"SELECT h.id, h.area_code, h.status, h.category FROM household h WHERE {within_sql('h.area_code', 'p')} AND {where} "
        "ORDER BY h.household_no"), _in_county(ctx))
    return [_Home(*r) for r in rows]


# --- loans: readiness, quotas, certificates, applications ----------------------------------------------------


async def _loan_setup(ctx: DemoContext) -> str:
    station, office = _as(ctx, Role.township_station), _as(ctx, Role.poverty_office)
    not_ready = ctx.townships[-1]
    for code in ctx.townships:
        ready = code != not_ready
        await loans.set_readiness(ctx.session, principal=office, township_code=code, ready=ready,
                                  note="领导班子、组织机构和工作人员已落实" if ready else "扶贫工作站人员尚未到位")
    for year in (ctx.as_of.year - 1, ctx.as_of.year):
        for code in ctx.townships:
            amount = Decimal(ctx.rng.randrange(150, 301) * 10_000)
            await loans.set_quota(ctx.session, principal=office, township_code=code, year=year, amount=amount)
    # 贷款证: about one eligible household in four has one, most of them issued by the coop.
    eligible = await _homes(ctx.session, ctx, "h.category <> 'tekun' AND h.status = 'registered'")
    rows: list[dict[str, Any]] = []
    for h in eligible:
        if ctx.rng.random() >= 0.25:
            continue
        reviewed = ctx.as_of - timedelta(days=ctx.rng.randrange(30, 700))
        issued = ctx.rng.random() < 0.85
        rows.append({
            "id": _uuid(ctx), "area_code": h.village, "household_id": h.id,
            "status": "issued" if issued else "village_reviewed",
            "credit_rating": ctx.rng.choice(("优秀", "较好", "较好", "一般")),
            "village_opinion": "家庭收入稳定,诚实守信,同意推荐", "village_reviewed_on": reviewed,
            "number": f"DZ{h.village[6:9]}{len(rows):05d}" if issued else None,
            "issued_on": reviewed + timedelta(days=ctx.rng.randrange(3, 20)) if issued else None,
            "issued_by": station.username if issued else None,
        })
    if rows:
        await ctx.session.execute(insert(LoanCertificate), rows)
    issued_n = sum(1 for r in rows if r["status"] == "issued")
    return (f"{len(ctx.townships) - 1} of {len(ctx.townships)} townships ready, quotas for "
            f"{ctx.as_of.year - 1}–{ctx.as_of.year}, {len(rows)} loan certificates ({issued_n} issued)")


PATHS: dict[str, list[str]] = {
    "submitted": [],
    "village_reviewed": ["village_review"],
    "station_reviewed": ["village_review", "station_recommend"],
    "coop_assessed": ["village_review", "station_recommend", "coop_assess"],
    "approved": ["village_review", "station_recommend", "coop_assess", "approve"],
    "disbursed": ["village_review", "station_recommend", "coop_assess", "approve"],
}
REJECTIONS = (["village_reject"], ["village_review", "station_reject"], ["village_review", "station_recommend", "reject"],
              ["village_review", "station_recommend", "coop_assess", "reject"])
ROLE_OF = {name: tr.role for name, tr in approval.TRANSITIONS.items()}
OPINIONS = {
    "village_review": "经村民评议,收入和诚信情况属实,同意上报", "village_reject": "该户有劳动能力但无发展项目,暂不推荐",
    "station_recommend": "项目可行,同意推荐信用社", "station_reject": "项目不属于扶持产业范围",
    "coop_assess": "资信调查良好", "approve": "同意发放", "reject": "还款来源不足",
    "poverty_office_approve": "同意", "credit_union_approve": "同意",
}
PURPOSES = ("tobacco", "sugar", "mulberry", "livestock", "vegetables", "other_farming")


async def _applications(ctx: DemoContext) -> str:
    """Applications in every workflow state, each moved through `fupin.loans.approval` by the role the
    regulation names; the disbursed ones get their loan as the bank's disbursement event would book it."""
    ready = set(ctx.townships[:-1])
    candidates = await _homes(ctx.session, ctx, f"""
        h.category <> 'tekun'
        AND EXISTS (SELECT 1 FROM loan_certificate c WHERE c.household_id = h.id AND c.status = 'issued')
        AND EXISTS (SELECT 1 FROM household_member m WHERE m.household_id = h.id AND m.active
                    AND m.labour IN {LABOUR!r})
        AND NOT EXISTS (SELECT 1 FROM loan l WHERE l.household_id = h.id AND l.outstanding > 0)""")
    candidates = [h for h in candidates if h.village[:9] + "000" in ready]
    ctx.rng.shuffle(candidates)
    plan: list[tuple[str, list[str]]] = []
    for state in APPLICATION_STATES:
        for k in range(PER_STATE):
            steps = REJECTIONS[k % len(REJECTIONS)] if state == "rejected" else list(PATHS[state])
            plan.append((state, steps))
    bank = _as(ctx, Role.bank)
    counts: dict[str, int] = {}
    for n, ((state, steps), home) in enumerate(zip(plan, candidates, strict=False)):
        big = state in ("approved", "disbursed") and n % PER_STATE == 0  # above ¥20,000: county approval first
        amount = Decimal(ctx.rng.randrange(25, 41) * 1000 if big else ctx.rng.randrange(5, 21) * 1000)
        if big:
            steps = [*steps[:-1], "poverty_office_approve", "credit_union_approve", steps[-1]]
        day = ctx.as_of - timedelta(days=ctx.rng.randrange(2 * len(steps) + 10, 80))
        app = await approval.submit(
            ctx.session, principal=_as(ctx, Role.village_committee), product="household", household_id=home.id,
            applicant_member_id=None, enterprise_name=None, township_code=None, amount=amount,
            term_months=12, purpose=ctx.rng.choice(PURPOSES), on=day,
        )
        for step in steps:
            day = min(ctx.as_of, day + timedelta(days=ctx.rng.randrange(1, 4)))
            await approval.add_step(ctx.session, principal=_as(ctx, ROLE_OF[step]), application_id=app.id,
                                    step=step, opinion=OPINIONS[step], on=day)
        if state == "disbursed":
            on = min(ctx.as_of, day + timedelta(days=ctx.rng.randrange(1, 5)))
            ctx.session.add(Loan(
                area_code=app.area_code, township_code=app.township_code, household_id=app.household_id,
                product=app.product, purpose=app.purpose, productive=app.subsidy_eligible, principal=app.amount,
                outstanding=app.amount, interest_rate=Decimal("0.069000"), disbursed_on=on,
                due_on=add_months(on, app.term_months), status="current", coop_code=f"COOP{app.township_code[6:9]}",
                external_id=f"DEMO-{n:05d}", application_id=app.id,
            ))
            app.status, app.coop_code = "disbursed", f"COOP{app.township_code[6:9]}"
            ctx.session.add(LoanApplicationStep(
                application_id=app.id, area_code=app.area_code, step="disbursed", from_status="approved",
                to_status="disbursed", role=Role.bank.value, actor=bank.username, on_date=on,
                opinion=f"放款 {app.amount} 元"))
            ctx.session.add(LoanNotification(area_code=app.area_code, household_id=app.household_id,
                                              application_id=app.id, message="贷款已发放"))
            await ctx.session.flush()
        counts[state] = counts.get(state, 0) + 1
    return f"{sum(counts.values())} loan applications (" + ", ".join(f"{s} {n}" for s, n in counts.items()) + ")"


# --- pairing: units, cadres, village assignments, work teams, pairings, visits -------------------------------


async def _pairing(ctx: DemoContext) -> str:
    office = _as(ctx, Role.poverty_office)
    units = [
        await structure.create_unit(ctx.session, principal=office, area_code=ctx.county, name=name, kind=kind,
                                    level=level, contact=f"0859-{8_100_000 + i * 1111}")
        for i, (name, kind, level) in enumerate(UNITS)
    ]
    cadre_user = await ctx.session.scalar(select(User.id).where(User.username == ctx.username(Role.cadre)))
    start = ctx.as_of - timedelta(days=900)
    cadres: list[dict[str, Any]] = []
    by_village: dict[str, list[uuid.UUID]] = {}
    assignments: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    for v, village in enumerate(ctx.villages):
        lead = units[v % len(units)]
        helper = units[(v + 3) % len(units)]
        assignments += [
            {"id": _uuid(ctx), "area_code": village, "unit_id": lead.id, "lead": True, "start_date": start},
            {"id": _uuid(ctx), "area_code": village, "unit_id": helper.id, "lead": False, "start_date": start},
        ]
        ids = []
        for k in range(CADRES_PER_VILLAGE):
            cid = _uuid(ctx)
            unit = lead if k < CADRES_PER_VILLAGE - 1 else helper
            cadres.append({
                "id": cid, "area_code": ctx.county, "unit_id": unit.id,
                "name": names.person(ctx.rng, ctx.rng.choice("MF")), "level": unit.level,
                "contact": f"139{ctx.rng.randrange(10**8):08d}", "status": "active",
                "user_id": cadre_user if (v, k) == (0, 0) else None,
            })
            ids.append(cid)
        by_village[village] = ids
        teams.append({"id": _uuid(ctx), "area_code": village, "unit_id": lead.id, "first_secretary_id": ids[0],
                      "leader_id": ids[0], "member_ids": ids[1:3], "start_date": start})
    await ctx.session.execute(insert(Cadre), cadres)
    await ctx.session.execute(insert(VillageAssignment), assignments)
    await ctx.session.execute(insert(WorkTeam), teams)

    homes = [h for h in await _homes(ctx.session, ctx) if h.status not in EXITED]
    pairings: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    per_village: dict[str, int] = {}
    months = []
    first = ctx.as_of.replace(day=1)
    for _ in range(3):
        months.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    for h in homes:
        if ctx.rng.random() >= 0.92:  # most, not all: the coverage report has something to show
            continue
        # Round robin within the village, so every cadre (the demo cadre user's included) has households.
        taken = per_village.get(h.village, 0)
        per_village[h.village] = taken + 1
        cadre = by_village[h.village][taken % CADRES_PER_VILLAGE]
        began = ctx.as_of - timedelta(days=ctx.rng.randrange(120, 900))
        pairings.append({"id": _uuid(ctx), "area_code": h.village, "cadre_id": cadre, "household_id": h.id,
                         "start_date": began})
        for month in months:
            if ctx.rng.random() >= 0.8:
                continue
            last = min(ctx.as_of, (month + timedelta(days=31)).replace(day=1) - timedelta(days=1))
            day = month + timedelta(days=ctx.rng.randrange(0, (last - month).days + 1))
            visits.append({
                "id": _uuid(ctx), "area_code": h.village, "household_id": h.id, "cadre_id": cadre, "visit_date": day,
                "kind": "condolence" if ctx.rng.random() < 0.1 else "routine",
                "findings": ctx.rng.choice(("生产生活正常", "家中老人身体欠佳", "养殖规模扩大", "子女上学有困难")),
                "measures": ctx.rng.choice(("宣讲政策", "协调医疗救助", "联系技术员上门指导", "落实教育资助")),
                "photo_refs": [], "recorded_by": None, "on_behalf": False,
            })
    await ctx.session.execute(insert(Pairing), pairings)
    for i in range(0, len(visits), 5_000):
        await ctx.session.execute(insert(Visit), visits[i:i + 5_000])
    return (f"{len(units)} helping units, {len(cadres)} cadres, {len(pairings):,} pairings of {len(homes):,} "
            f"households still in need, {len(visits):,} visits in the last 3 months")


# --- dividends -----------------------------------------------------------------------------------------------


async def _dividends(ctx: DemoContext) -> str:
    office = _as(ctx, Role.poverty_office)
    start = date(ctx.as_of.year - 1, 1, 1)
    company = await dividends.create_pool(
        ctx.session, principal=office, name="特惠贷统筹投资(贫困户+政府公司)", operator_name="扶贫示范县开发投资有限公司",
        operator_kind="company", model="rate", rate=Decimal("0.030000"), fixed_amount=None, term_years=3,
        start_on=start, area_code=ctx.county, insurance_premium=None, insurance_cover=None,
        per_person_cap=Decimal("50000.00"),
    )
    coop_township = ctx.townships[1]
    coop = await dividends.create_pool(
        ctx.session, principal=office, name="藏香猪代养入股分红", operator_name="扶贫示范县畜禽养殖专业合作社",
        operator_kind="cooperative", model="fixed", rate=None, fixed_amount=Decimal("1000.00"), term_years=3,
        start_on=start, area_code=coop_township, insurance_premium=Decimal("216.00"),
        insurance_cover=Decimal("200000.00"),
    )
    registered = await _homes(ctx.session, ctx, "h.status = 'registered'")
    persons: dict[uuid.UUID, int] = dict((await ctx.session.execute(text(
        f"SELECT household_id, count(*) FROM household_member WHERE {within_sql('area_code', 'p')} AND active "
        "GROUP BY 1"), _in_county(ctx))).all())
    pooled = ctx.rng.sample(registered, 28)
    for h in pooled:
        await dividends.add_holding(ctx.session, principal=office, pool_id=company.id, household_id=h.id,
                                    amount=Decimal(50_000 * persons[h.id]), start_on=None, end_on=None, loan_id=None)
    local = [h for h in registered if h.village.startswith(coop_township[:9])]
    shares = ctx.rng.sample(local, min(40, len(local)))
    for h in shares:
        await dividends.add_holding(ctx.session, principal=office, pool_id=coop.id, household_id=h.id,
                                    amount=Decimal("10000.00"), start_on=None, end_on=None, loan_id=None)
    return f"2 dividend pools: {company.name} {len(pooled)} holdings, {coop.name} {len(shares)} holdings"


# --- projects ------------------------------------------------------------------------------------------------

PROJECTS: tuple[tuple[str, Kind, str, str], ...] = (
    ("组组通硬化道路", Kind.infrastructure, "县交通运输局", "accepted"),
    ("通村道路桥梁新建", Kind.infrastructure, "县交通运输局", "closed"),
    ("藏香猪养殖产业扶持", Kind.industry, "县农业农村局", "in_progress"),
    ("精品水果种植示范", Kind.science, "县科技局", "completed"),
    ("蔬菜大棚建设", Kind.industry, "县农业农村局", "tendering"),
    ("贫困劳动力技能培训", Kind.training, "县人社局", "closed"),
    ("桑蚕产业发展", Kind.industry, "县农业农村局", "approved"),
    ("易地搬迁安置点配套", Kind.relocation, "县发展改革局", "suspended"),
    ("乡村旅游示范点", Kind.tourism, "县文化旅游局", "in_library"),
    ("村级文化活动室", Kind.culture, "县文化旅游局", "proposed"),
    ("烤烟基地水利配套", Kind.infrastructure, "县水务局", "cancelled"),
    ("茶叶加工厂建设", Kind.industry, "县农业农村局", "in_progress"),
)


async def _advance(ctx: DemoContext, principal: Principal, project_id: uuid.UUID, to: Status, day: date,
                   **kw: str) -> None:
    await projects.transition(ctx.session, principal=principal, project_id=project_id, to=to, on=day,
                              reason=kw.get("reason"), acceptance_team=kw.get("team"), acceptance_result=kw.get("result"))


async def _projects(ctx: DemoContext) -> str:
    office = _as(ctx, Role.poverty_office)
    registered = await _homes(ctx.session, ctx, "h.status IN ('registered', 'returned_to_poverty')")
    by_township: dict[str, list[_Home]] = {}
    for h in registered:
        by_township.setdefault(h.village[:9] + "000", []).append(h)
    funded = Decimal(0)
    line: list[Status] = [s for s in Status if s not in (Status.suspended, Status.cancelled)]
    for i, (name, kind, dept, target) in enumerate(PROJECTS):
        township = ctx.townships[i % len(ctx.townships)]
        owner = ctx.county if i % 3 == 0 else township
        villages = sorted(ctx.rng.sample([v for v in ctx.villages if v.startswith(township[:9])], 2))
        central = Decimal(ctx.rng.randrange(20, 120) * 10_000)
        county_part = Decimal(ctx.rng.randrange(5, 30) * 10_000)
        body = ProjectCreate(
            name=f"{ctx.as_of.year}年{name}项目", kind=kind, year=ctx.as_of.year, department=dept,
            implementing_unit=f"{dept}项目办", area_code=owner, villages=villages,
            quantities=[Quantity(item=name, unit="项", planned=Decimal(1))],
            budget={Source.central: central, Source.county: county_part},
        )
        project = await projects.create_project(ctx.session, principal=office, body=body)
        homes = [h for h in by_township[township] if h.village in villages]
        chosen = ctx.rng.sample(homes, min(len(homes), ctx.rng.randrange(8, 25)))
        benefit = BenefitKind.cash if kind is Kind.industry else BenefitKind.infrastructure
        await project_beneficiaries.add_beneficiaries(
            ctx.session, principal=office, project_id=project.id, villages=villages,
            households=[HouseholdBenefitIn(household_id=h.id, kind=benefit,
                                           amount=Decimal(ctx.rng.randrange(5, 30) * 100) if benefit is BenefitKind.cash
                                           else Decimal(0))
                        for h in chosen],
        )
        goal = {"suspended": Status.in_progress, "cancelled": Status.in_library}.get(target, Status(target))
        day = ctx.as_of - timedelta(days=300)
        for to in line[1:line.index(goal) + 1]:
            day += timedelta(days=ctx.rng.randrange(5, 20))
            if to is Status.approved:
                await projects.add_notice(ctx.session, principal=office, project_id=project.id,
                                          stage=NoticeStage.pre_approval, starts_on=day, ends_on=day + timedelta(days=7),
                                          content=f"{body.name} 立项公示")
                day += timedelta(days=8)
            if to is Status.in_progress:
                bidder = f"{names.place(ctx.rng, '建设有限公司')}"
                await projects.add_bid(ctx.session, principal=office, project_id=project.id, bidder=bidder,
                                       amount=central * Decimal("0.95"), winner=True)
            if to is Status.closed:
                await projects.add_notice(ctx.session, principal=office, project_id=project.id,
                                          stage=NoticeStage.post_acceptance, starts_on=day,
                                          ends_on=day + timedelta(days=7), content=f"{body.name} 验收结果公示")
                day += timedelta(days=8)
            await _advance(ctx, office, project.id, to, day, team="县项目验收组", result="合格")
            if to is Status.approved:
                share = central if goal in (Status.accepted, Status.closed) else central * Decimal("0.6")
                await project_funds.record_movement(ctx.session, principal=office, project_id=project.id, body=FundCreate(
                    movement=Movement.allocation, source=Source.central, amount=share, effective_on=day))
                funded += share
            if to is Status.in_progress:
                await projects.add_progress(ctx.session, principal=office, project_id=project.id,
                                            percent=ctx.rng.randrange(20, 90), reported_on=day, note="按计划推进")
                await project_funds.record_movement(ctx.session, principal=office, project_id=project.id, body=FundCreate(
                    movement=Movement.disbursement, source=Source.central, amount=central * Decimal("0.3"),
                    effective_on=day, payee_kind=PayeeKind.bidder, milestone="预付款"))
            if to is Status.accepted:
                await project_funds.record_movement(ctx.session, principal=office, project_id=project.id, body=FundCreate(
                    movement=Movement.disbursement, source=Source.central, amount=central * Decimal("0.7"),
                    effective_on=day, payee_kind=PayeeKind.bidder, milestone="尾款", final=True))
        if target == "suspended":
            await _advance(ctx, office, project.id, Status.suspended, day + timedelta(days=5), reason="征地协调未完成")
        if target == "cancelled":
            await _advance(ctx, office, project.id, Status.cancelled, day + timedelta(days=5), reason="项目选址不符合用地规划")
    counts: dict[str, int] = dict((await ctx.session.execute(text(
        f"SELECT status, count(*) FROM project WHERE {within_sql('area_code', 'p')} GROUP BY 1 ORDER BY 1"),
        _in_county(ctx))).all())
    return (f"{sum(counts.values())} projects (" + ", ".join(f"{s} {n}" for s, n in counts.items())
            + f"), ¥{funded:,.2f} allocated")


# --- subsidies -----------------------------------------------------------------------------------------------


async def _subsidies(ctx: DemoContext) -> str:
    policy = await subsidies.create_policy(
        ctx.session, principal=_as(ctx, Role.finance_bureau), effective_from=date(2016, 1, 1),
        rate=Decimal("0.025800"), productive_only=True, note="县扶贫到户贷款管理办法第三条:贴息标准为2.58%/年",
    )
    return f"subsidy policy {policy.rate * 100:.2f}%/year from {policy.effective_from} (productive loans only)"


register("loan_setup", _loan_setup)
register("loan_applications", _applications)
register("pairing", _pairing)
register("dividends", _dividends)
register("projects", _projects)
register("subsidies", _subsidies)
