"""Read models: a run's per-household and per-person figures, its roster (.xlsx), a household's dividends."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import extract, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import xlsx
from fupin.areas.scope import in_scope, scoped
from fupin.auth.principal import Principal
from fupin.dividends import rules
from fupin.dividends.models import DividendHolding, DividendPayout, DividendPool
from fupin.dividends.schemas import (
    HouseholdDividend,
    HouseholdDividends,
    HouseholdYear,
    PayoutLine,
    RunDetail,
    RunRead,
)
from fupin.dividends.service import get_run
from fupin.errors import not_found
from fupin.households.models import Household
from fupin.money import round_fen


async def run_detail(session: AsyncSession, *, principal: Principal, run_id: uuid.UUID) -> RunDetail:
    """The run's totals and one line per paid household, each split exactly among its persons."""
    run = await get_run(session, principal=principal, run_id=run_id)
    pool = await session.get(DividendPool, run.pool_id)
    assert pool is not None
    stmt = (
        select(
            DividendPayout.household_id, Household.household_no, Household.head_name, DividendPayout.area_code,
            DividendPayout.holding_id, DividendHolding.amount.label("holding_amount"), DividendPayout.days_held,
            DividendPayout.amount, DividendPayout.persons,
        )
        .join(Household, Household.id == DividendPayout.household_id)
        .join(DividendHolding, DividendHolding.id == DividendPayout.holding_id)
        .where(DividendPayout.run_id == run.id, DividendPayout.amount > 0)
        .where(in_scope(principal, DividendPayout.area_code))
        .order_by(DividendPayout.area_code, Household.household_no, DividendPayout.household_id)
    )
    lines = [
        PayoutLine(
            household_id=r.household_id, household_no=r.household_no, head_name=r.head_name, area_code=r.area_code,
            holding_id=r.holding_id, holding_amount=r.holding_amount, days_held=r.days_held, amount=r.amount,
            persons=r.persons, per_person=rules.per_person(r.amount, r.persons),
        )
        for r in (await session.execute(stmt)).all()
    ]
    per_person = round_fen(run.total / run.persons) if run.persons else None
    premiums = pool.insurance_premium * run.households if pool.insurance_premium is not None else None
    return RunDetail(
        **RunRead.model_validate(run).model_dump(), pool_name=pool.name, per_person=per_person,
        insurance_premiums=premiums, lines=lines,
    )


ROSTER_HEADER = ["户编号 household_no", "户主 head", "村 village", "股金 share", "持有天数 days", "分红 amount",
                 "人数 persons", "人均 per person"]


def roster_xlsx(detail: RunDetail) -> bytes:
    """The payment roster (花名册) as a workbook: one row per household, totals at the foot.
    Amounts are written as text so no spreadsheet float ever touches them."""
    wb, ws = xlsx.sheet("分红花名册")
    ws.append([f"{detail.pool_name} {detail.period}", f"run {detail.id}"])
    ws.append(ROSTER_HEADER)
    for ln in detail.lines:
        per = sorted(set(ln.per_person), reverse=True)
        ws.append([ln.household_no, ln.head_name, ln.area_code, str(ln.holding_amount), ln.days_held, str(ln.amount),
                   ln.persons, " / ".join(str(p) for p in per)])
    ws.append(["合计 total", "", "", "", "", str(detail.total), detail.persons,
               str(detail.per_person) if detail.per_person is not None else ""])
    return xlsx.to_bytes(wb)


async def household_dividends(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID
) -> HouseholdDividends:
    """Every dividend a household received, with its pool, and the total per year (of the period's end)."""
    household = await session.scalar(
        scoped(select(Household), principal, Household.area_code).where(Household.id == household_id)
    )
    if household is None:
        raise not_found("household")
    year = extract("year", DividendPayout.period_end)
    rows = (
        await session.execute(
            select(
                year.label("year"), DividendPayout.pool_id, DividendPayout.pool_name, DividendPayout.run_id,
                DividendPayout.period, DividendPayout.period_end, DividendPayout.amount, DividendPayout.persons,
            )
            .where(DividendPayout.household_id == household.id, DividendPayout.amount > 0,
                   in_scope(principal, DividendPayout.area_code))
            .order_by(DividendPayout.period_end, DividendPayout.pool_name, DividendPayout.run_id)
        )
    ).all()
    items = [
        HouseholdDividend(year=int(r.year), pool_id=r.pool_id, pool_name=r.pool_name, run_id=r.run_id,
                          period=r.period, period_end=r.period_end, amount=r.amount, persons=r.persons)
        for r in rows
    ]
    totals: dict[int, Decimal] = {}
    for it in items:
        totals[it.year] = totals.get(it.year, Decimal("0")) + it.amount
    return HouseholdDividends(
        household_id=household.id, years=[HouseholdYear(year=y, total=t) for y, t in sorted(totals.items())],
        items=items,
    )
