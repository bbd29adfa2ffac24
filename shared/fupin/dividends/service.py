"""Dividend pools, holdings, renewal and redemption, and the request for a keyed dividend run.

Sources: 001 L41/L61 (特惠贷 pooled into a government company, 3% a year, 3 years) and 002 L23
(cooperative share ¥10,000, fixed ¥1,000 a household a year, 3-year contract, renew or redeem in
cash or in kind). Money moves only through `fupin.ledger.service` (redemption) or the run's
set-based postings (`fupin.dividends.jobs`).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.areas.codes import Level, contains, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.dividends import rules
from fupin.dividends.models import DividendHolding, DividendPool, DividendRun
from fupin.dividends.rules import HoldingStatus
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households.models import Household, Member
from fupin.ledger import service as ledger
from fupin.loans.models import Loan
from fupin.paging import after, page

PAY_KIND = "dividend.pay"
MATURE_KIND = "dividend.mature"
REGISTERED = "registered"


def _pool_snapshot(pool: DividendPool) -> dict[str, object]:
    return {
        "name": pool.name, "operator_name": pool.operator_name, "operator_kind": pool.operator_kind,
        "model": pool.model, "rate": pool.rate, "fixed_amount": pool.fixed_amount, "term_years": pool.term_years,
        "start_on": pool.start_on, "area_code": pool.area_code,
        "insurance_premium": pool.insurance_premium, "insurance_cover": pool.insurance_cover,
        "per_person_cap": pool.per_person_cap,
    }


def _holding_snapshot(h: DividendHolding) -> dict[str, object]:
    return {
        "pool_id": h.pool_id, "household_id": h.household_id, "amount": h.amount, "start_on": h.start_on,
        "end_on": h.end_on, "status": h.status, "loan_id": h.loan_id, "closed_on": h.closed_on,
    }


async def create_pool(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    operator_name: str,
    operator_kind: str,
    model: str,
    rate: Decimal | None,
    fixed_amount: Decimal | None,
    term_years: int,
    start_on: date,
    area_code: str,
    insurance_premium: Decimal | None,
    insurance_cover: Decimal | None,
    per_person_cap: Decimal | None = None,
) -> DividendPool:
    """A pool is run by a county or a township; the model fixes which term applies (rate or fixed)."""
    if level_of(area_code) not in (Level.county, Level.township):
        raise RuleViolation(
            "dividend.pool_area_level", "a pool belongs to a county or a township", "分红项目须属于县或乡镇"
        )
    if not visible(principal, area_code) or await session.get(Area, area_code) is None:
        raise not_found("area")
    if operator_kind != rules.OperatorKind.cooperative and (insurance_premium or insurance_cover):
        raise RuleViolation(
            "dividend.insurance_cooperative_only", "insurance terms belong to the cooperative model",
            "意外保险仅适用于合作社入股模式",
        )
    pool = DividendPool(
        id=uuid.uuid4(), area_code=area_code, name=name, operator_name=operator_name, operator_kind=operator_kind,
        model=model, rate=rate, fixed_amount=fixed_amount, term_years=term_years, start_on=start_on,
        insurance_premium=insurance_premium, insurance_cover=insurance_cover, per_person_cap=per_person_cap,
        created_by=principal.username,
    )
    session.add(pool)
    await session.flush()
    await audit.record(
        session, principal, action="dividend.pool.create", entity="dividend_pool", entity_id=pool.id,
        area_code=area_code, after=_pool_snapshot(pool),
    )
    return pool


async def get_pool(session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID) -> DividendPool:
    pool = await session.scalar(scoped(select(DividendPool), principal, DividendPool.area_code)
                                .where(DividendPool.id == pool_id))
    if pool is None:
        raise not_found("dividend_pool")
    return pool


async def list_pools(
    session: AsyncSession, *, principal: Principal, limit: int, after: uuid.UUID | None
) -> list[DividendPool]:
    stmt = scoped(select(DividendPool), principal, DividendPool.area_code).order_by(DividendPool.id).limit(limit)
    if after is not None:
        stmt = stmt.where(DividendPool.id > after)
    return list((await session.scalars(stmt)).all())


async def add_holding(
    session: AsyncSession,
    *,
    principal: Principal,
    pool_id: uuid.UUID,
    household_id: uuid.UUID,
    amount: Decimal,
    start_on: date | None,
    end_on: date | None,
    loan_id: uuid.UUID | None,
) -> DividendHolding:
    """Enrol a registered (建档立卡) household once per pool; a pooled-loan holding names its loan."""
    pool = await get_pool(session, principal=principal, pool_id=pool_id)
    household = await session.scalar(
        scoped(select(Household), principal, Household.area_code).where(Household.id == household_id)
    )
    if household is None or not contains(pool.area_code, household.area_code):
        raise not_found("household")
    if household.status != REGISTERED:
        raise RuleViolation(
            "dividend.household_not_registered",
            f"only registered households may hold a share (status is {household.status})",
            f"仅建档立卡贫困户可以入股分红(当前状态:{household.status})",
        )
    exists = await session.scalar(
        select(DividendHolding.id).where(DividendHolding.pool_id == pool.id,
                                         DividendHolding.household_id == household.id)
    )
    if exists is not None:
        raise Conflict("dividend.holding_exists", "the household already holds in this pool", "该户已在此项目中入股")
    if pool.per_person_cap is not None:
        persons = int(await session.scalar(
            select(func.count()).select_from(Member).where(Member.household_id == household.id, Member.active)
        ) or 0)
        cap = pool.per_person_cap * persons
        if amount > cap:
            raise RuleViolation(
                "dividend.amount_over_cap",
                f"at most {pool.per_person_cap} per person: {cap} for {persons} persons",
                f"人均不超过 {pool.per_person_cap} 元:{persons} 人最多 {cap} 元",
                extra={"cap": str(cap), "persons": persons},
            )
    if loan_id is not None:
        loan = await session.get(Loan, loan_id)
        if loan is None or loan.household_id != household.id:
            raise RuleViolation(
                "dividend.loan_mismatch", "the loan is not this household's", "该贷款不属于此户"
            )
    start = start_on or pool.start_on
    end = end_on or rules.contract_end(start, pool.term_years)
    if end < start:
        raise RuleViolation("dividend.bad_dates", "the contract ends before it starts", "合同结束日期早于开始日期")
    holding = DividendHolding(
        id=uuid.uuid4(), pool_id=pool.id, household_id=household.id, area_code=household.area_code,
        amount=amount, start_on=start, end_on=end, status=HoldingStatus.active.value, loan_id=loan_id,
    )
    session.add(holding)
    await session.flush()
    await audit.record(
        session, principal, action="dividend.holding.create", entity="dividend_holding", entity_id=holding.id,
        area_code=household.area_code, after=_holding_snapshot(holding),
    )
    return holding


async def list_holdings(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID, status: str | None
) -> list[DividendHolding]:
    pool = await get_pool(session, principal=principal, pool_id=pool_id)
    stmt = scoped(select(DividendHolding), principal, DividendHolding.area_code).where(
        DividendHolding.pool_id == pool.id
    ).order_by(DividendHolding.area_code, DividendHolding.id)
    if status:
        stmt = stmt.where(DividendHolding.status == status)
    return list((await session.scalars(stmt)).all())


async def _holding_for_update(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID, holding_id: uuid.UUID
) -> tuple[DividendPool, DividendHolding]:
    pool = await get_pool(session, principal=principal, pool_id=pool_id)
    holding = await session.scalar(
        scoped(select(DividendHolding), principal, DividendHolding.area_code)
        .where(and_(DividendHolding.id == holding_id, DividendHolding.pool_id == pool.id))
        .with_for_update()
    )
    if holding is None:
        raise not_found("dividend_holding")
    if holding.status not in rules.OPEN:
        raise Conflict(
            "dividend.holding_closed", f"the holding is already {holding.status}", f"该股份已结束({holding.status})"
        )
    return pool, holding


async def renew_holding(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID, holding_id: uuid.UUID,
    term_years: int | None,
) -> DividendHolding:
    """At maturity the household may continue for another term (R-CS-03, 「可连续与公司合作」)."""
    pool, holding = await _holding_for_update(session, principal=principal, pool_id=pool_id, holding_id=holding_id)
    before = _holding_snapshot(holding)
    holding.end_on = rules.contract_end(holding.end_on + timedelta(days=1), term_years or pool.term_years)
    holding.status = HoldingStatus.renewed.value
    await session.flush()
    await audit.record(
        session, principal, action="dividend.holding.renew", entity="dividend_holding", entity_id=holding.id,
        area_code=holding.area_code, before=before, after=_holding_snapshot(holding),
    )
    return holding


async def redeem_holding(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID, holding_id: uuid.UUID,
    in_kind: bool, on: date | None,
) -> DividendHolding:
    """The contract ends: the operator returns exactly the share (operator → household), or the household
    takes the animals back and no money moves (R-CS-03, 「返还每户10000元股金或...领走代养的藏香猪」).
    A redeemed holding is never paid again."""
    pool, holding = await _holding_for_update(session, principal=principal, pool_id=pool_id, holding_id=holding_id)
    before = _holding_snapshot(holding)
    day = on or business_date()
    if day < holding.start_on:
        raise RuleViolation("dividend.bad_dates", "redemption before the contract starts", "赎回日期早于合同开始")
    if not in_kind:
        operator = await ledger.ensure_account(
            session, holder_kind="operator", holder_ref=str(pool.id), purpose="share", area_code=pool.area_code,
            name=f"{pool.operator_name} 股金", allow_negative=True,
        )
        household = await ledger.ensure_account(
            session, holder_kind="household", holder_ref=str(holding.household_id), purpose="share",
            area_code=holding.area_code,
        )
        entry = await ledger.transfer(
            session, source=operator, target=household, amount=holding.amount, kind="dividend.redeem",
            reference=f"dividend.redeem:{holding.id}", effective_on=day,
            description=f"{pool.name} 股金返还", created_by=principal.username,
        )
        holding.redemption_entry_id = entry.id
    holding.status = (HoldingStatus.redeemed_in_kind if in_kind else HoldingStatus.redeemed).value
    holding.closed_on = day
    await session.flush()
    await audit.record(
        session, principal, action="dividend.holding.redeem", entity="dividend_holding", entity_id=holding.id,
        area_code=holding.area_code, before=before, after=_holding_snapshot(holding),
    )
    return holding


def run_key(pool_id: uuid.UUID, period: str) -> str:
    return f"{PAY_KIND}:{pool_id}:{period}"


async def request_run(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID, period: str
) -> DividendRun:
    """Ask the worker to pay a pool for a period, once: the key `dividend.pay:{pool}:{period}` is unique,
    and a period overlapping one already requested is refused, so no day is paid twice."""
    p = rules.parse_period(period)
    pool = await get_pool(session, principal=principal, pool_id=pool_id)
    if p.end > business_date():
        # Paid at the period's end (「年末可分红」, 001 L41): days not yet held are not owed.
        raise RuleViolation(
            "dividend.period_not_ended", f"the period {p.label} ends on {p.end}; pay it from that day",
            f"期间 {p.label} 于 {p.end} 结束,届时方可发放",
        )
    key = run_key(pool.id, p.label)
    overlapping = await session.scalar(
        select(DividendRun.job_key).where(
            DividendRun.pool_id == pool.id, DividendRun.period_start <= p.end, DividendRun.period_end >= p.start
        ).limit(1)
    )
    if overlapping is not None:
        raise Conflict(
            "dividend.run_exists", f"a run covering this period was already requested ({overlapping})",
            f"该期间的分红已申请发放({overlapping})",
        )
    run = DividendRun(
        id=uuid.uuid4(), pool_id=pool.id, area_code=pool.area_code, period=p.label, period_start=p.start,
        period_end=p.end, job_key=key, status="pending", requested_by=principal.username,
        total=Decimal("0"), households=0, persons=0,
    )
    session.add(run)
    await session.flush()
    _, created = await jobs.request_job(
        session, kind=PAY_KIND, key=key, area_code=pool.area_code, args={"run_id": str(run.id)},
        requested_by=principal.username,
    )
    if not created:
        raise Conflict("dividend.run_exists", f"{key} was already requested", f"{key} 已申请发放")
    await audit.record(
        session, principal, action="dividend.run.request", entity="dividend_run", entity_id=run.id,
        area_code=pool.area_code, after={"pool_id": pool.id, "period": p.label, "key": key},
    )
    return run


async def get_run(session: AsyncSession, *, principal: Principal, run_id: uuid.UUID) -> DividendRun:
    run = await session.scalar(scoped(select(DividendRun), principal, DividendRun.area_code)
                               .where(DividendRun.id == run_id))
    if run is None:
        raise not_found("dividend_run")
    return run


async def list_runs(
    session: AsyncSession, *, principal: Principal, pool_id: uuid.UUID | None, limit: int, cursor: str | None = None,
) -> tuple[list[DividendRun], str | None]:
    stmt = scoped(select(DividendRun), principal, DividendRun.area_code)
    if pool_id is not None:
        stmt = stmt.where(DividendRun.pool_id == pool_id)
    stmt = after(stmt, (DividendRun.created_at.desc(), DividendRun.id), cursor, limit)  # newest first
    return page((await session.scalars(stmt)).all(), limit, lambda r: (r.created_at, r.id))
