"""Worker handlers: pay a dividend run (set-based) and mark ended contracts matured.

A run is a handful of statements whatever the pool's size: payouts computed and inserted in one
`INSERT … SELECT`, household accounts in one, the run's journal entry, and all its lines in one
(the ledger checks the entry balances). One entry per run, not per household:
the household lines carry the detail, and the ledger work halves. The rate and the fixed amount come
from the pool's own NUMERIC(9,6) / NUMERIC(14,2) columns, so no money constant is bound in SQL.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.calendar import business_date
from fupin.dividends.models import DividendPool, DividendRun
from fupin.dividends.rules import PAYABLE, HoldingStatus
from fupin.errors import not_found
from fupin.ledger import service as ledger

_PAYABLE_SQL = ", ".join(f"'{s}'" for s in PAYABLE)

# Entitlement per holding (rules.entitlement, in SQL): days held = overlap of contract and period,
# both ends inclusive; ROUND(numeric, 2) rounds half away from zero, i.e. half-up for these positive sums.
# Every join equates the county, so on Citus the statement runs inside each worker (co-located).
_INSERT_PAYOUTS = text(f"""
INSERT INTO dividend_payout (id, run_id, holding_id, household_id, area_code, county, pool_id, pool_name, period, period_end,
                             amount, days_held, persons)
SELECT gen_random_uuid(), CAST(:run_id AS uuid), c.holding_id, c.household_id, c.area_code, c.county, c.pool_id, c.pool_name,
       CAST(:period AS text), CAST(:period_end AS date), c.amount, c.held, c.persons
FROM (
  SELECT h.id AS holding_id, h.household_id, h.area_code, h.county, p.id AS pool_id, p.name AS pool_name, d.held,
         round(CASE WHEN p.model = 'rate' THEN p.rate * h.amount * d.held
                    ELSE p.fixed_amount * d.held END / CAST(:period_days AS integer), 2) AS amount,
         coalesce(m.persons, 0) AS persons
  FROM dividend_holding h
  JOIN dividend_pool p ON p.id = h.pool_id AND p.county = h.county
  CROSS JOIN LATERAL (
    SELECT (LEAST(h.end_on, CAST(:period_end AS date)) - GREATEST(h.start_on, CAST(:period_start AS date)) + 1) AS held
  ) d
  LEFT JOIN (
    SELECT household_id, county, count(*) AS persons FROM household_member
    WHERE active AND household_id IN (SELECT household_id FROM dividend_holding WHERE pool_id = CAST(:pool_id AS uuid))
    GROUP BY household_id, county
  ) m ON m.household_id = h.household_id AND m.county = h.county
  WHERE h.pool_id = CAST(:pool_id AS uuid)
    AND h.status IN ({_PAYABLE_SQL})
    AND h.start_on <= CAST(:period_end AS date)
    AND h.end_on >= CAST(:period_start AS date)
) c
""")

_HOUSEHOLD_CODE = ledger.account_code_sql("'household'", "CAST(x.household_id AS text)", "'dividend'")

_HOUSEHOLD_ACCOUNTS = f"""
SELECT DISTINCT ON (x.household_id) {_HOUSEHOLD_CODE} AS code,
       'household' AS holder_kind, x.household_id::text AS holder_ref, 'dividend' AS purpose,
       {_HOUSEHOLD_CODE} AS name, x.area_code
FROM dividend_payout x
WHERE x.run_id = CAST(:run_id AS uuid) AND x.amount > 0
"""

# One entry per run (its reference is the run's key: one posting per pool and period, forever) ...
_ENTRY = """
SELECT CAST(:entry_id AS uuid), 'dividend.pay', CAST(:reference AS text), CAST(:effective_on AS date),
       CAST(:description AS text), CAST(:run_id AS uuid), CAST(:created_by AS text), CAST(:entries_area AS text)
WHERE EXISTS (SELECT 1 FROM dividend_payout x WHERE x.run_id = CAST(:run_id AS uuid) AND x.amount > 0)
"""

# ... and all its lines in one statement: operator → households, i.e. debit each household's dividend
# account with its payout and credit the operator's dividend account with the total.
_LINES = f"""
SELECT CAST(:entry_id AS uuid) AS entry_id, a.id AS account_id, x.amount AS debit, CAST(0 AS numeric(14,2)) AS credit
FROM dividend_payout x JOIN ledger_account a ON a.code = {_HOUSEHOLD_CODE}
WHERE x.run_id = CAST(:run_id AS uuid) AND x.amount > 0
UNION ALL
SELECT CAST(:entry_id AS uuid), CAST(:operator_account AS uuid), CAST(0 AS numeric(14,2)), sum(x.amount)
FROM dividend_payout x
WHERE x.run_id = CAST(:run_id AS uuid) AND x.amount > 0
HAVING count(*) > 0
"""

_TOTALS = text("""
UPDATE dividend_run r
SET total = s.total, households = s.households, persons = s.persons, status = 'paid', run_on = CAST(:run_on AS date),
    paid_at = now(), entry_id = CASE WHEN s.total > 0 THEN CAST(:entry_id AS uuid) END
FROM (SELECT coalesce(sum(amount), 0) AS total, count(*) FILTER (WHERE amount > 0) AS households,
             coalesce(sum(persons) FILTER (WHERE amount > 0), 0) AS persons
      FROM dividend_payout WHERE run_id = CAST(:run_id AS uuid)) s
WHERE r.id = CAST(:run_id AS uuid)
RETURNING r.total, r.households, r.persons
""")


async def pay_run(session: AsyncSession, *, run_id: uuid.UUID, run_on: date) -> dict[str, Any]:
    """Pay every payable holding of the run's pool that overlaps the period; a paid run pays nothing again.

    Redeemed holdings and holdings that start after the period are never paid; persons are the
    household's active members on the run date (001 L61 reports 人均 per person)."""
    run = await session.scalar(select(DividendRun).where(DividendRun.id == run_id).with_for_update())
    if run is None:
        raise not_found("dividend_run")
    if run.status == "paid":
        return {"run_id": str(run.id), "already_paid": True, "total": str(run.total)}
    pool = await session.get(DividendPool, run.pool_id)
    assert pool is not None
    operator = await ledger.ensure_account(
        session, holder_kind="operator", holder_ref=str(pool.id), purpose="dividend", area_code=pool.area_code,
        name=f"{pool.operator_name} 分红", allow_negative=True,
    )
    params = {"run_id": run.id, "entry_id": uuid.uuid4()}
    await session.execute(_INSERT_PAYOUTS, {
        "run_id": run.id, "pool_id": pool.id, "period": run.period, "period_start": run.period_start,
        "period_end": run.period_end, "period_days": (run.period_end - run.period_start).days + 1,
    })
    await ledger.open_accounts_from(session, _HOUSEHOLD_ACCOUNTS, {"run_id": run.id})
    await ledger.add_entries_from(session, _ENTRY, {
        **params, "reference": run.job_key, "effective_on": run.period_end,
        "description": f"{pool.name} {run.period} 分红", "created_by": run.requested_by,
    }, area_code=pool.area_code)
    await ledger.post_lines_from(session, _LINES, {**params, "operator_account": operator.id})
    total, households, persons = (await session.execute(_TOTALS, {**params, "run_on": run_on})).one()
    await session.refresh(run)
    return {"run_id": str(run.id), "total": str(total), "households": households, "persons": persons}


async def mature_holdings(session: AsyncSession, *, on: date) -> int:
    """Mark every contract that ended before `on` matured, for the township to renew or redeem (R-CS-03)."""
    result = await session.execute(
        text("""UPDATE dividend_holding SET status = :matured, updated_at = now()
                WHERE status IN (:active, :renewed) AND end_on < :on"""),
        {"matured": HoldingStatus.matured.value, "active": HoldingStatus.active.value,
         "renewed": HoldingStatus.renewed.value, "on": on},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def pay_dividend_run(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    return await pay_run(session, run_id=uuid.UUID(run.args["run_id"]), run_on=business_date())


async def mark_matured(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    on = date.fromisoformat(run.args["on"]) if run.args.get("on") else business_date()
    return {"on": on.isoformat(), "matured": await mature_holdings(session, on=on)}
