"""Early warning (/reports/repayment-risk): live year-to-date rates of every township in an area,
bands, the county summary and ranking, and every township with overdue household loans (sorted by rate)
with those loans. Enterprise loans are in no township's figures (Q38)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.scope import bind, visible, within_sql
from fupin.assessment import rules
from fupin.assessment.rules import Band
from fupin.assessment.service import ENTERPRISE, policy_for
from fupin.auth.principal import Principal
from fupin.errors import not_found

_TOWNSHIPS_SQL = text(
    f"""
WITH tw AS (
  SELECT a.code, a.name FROM area a
  WHERE a.level = 'township' AND {within_sql('a.code', 'area')}
),
due AS (
  SELECT l.id, l.township_code, l.principal,
         LEAST(l.principal, GREATEST(COALESCE(SUM(r.amount), CAST(0 AS NUMERIC(14,2))),
                                     CAST(0 AS NUMERIC(14,2)))) AS recovered
  FROM loan l
  JOIN tw ON tw.code = l.township_code
  LEFT JOIN loan_repayment r ON r.loan_id = l.id AND r.paid_on <= CAST(:as_of AS date)
  WHERE l.due_on >= CAST(:start AS date) AND l.due_on <= CAST(:as_of AS date)
    AND l.product <> CAST(:enterprise AS text)
  GROUP BY l.id
)
SELECT tw.code, tw.name,
       COALESCE(SUM(d.principal), CAST(0 AS NUMERIC(14,2))) AS principal_due,
       COALESCE(SUM(d.recovered), CAST(0 AS NUMERIC(14,2))) AS principal_recovered,
       COUNT(d.id) AS loans_due,
       COUNT(d.id) FILTER (WHERE d.recovered < d.principal) AS loans_overdue
FROM tw LEFT JOIN due d ON d.township_code = tw.code
GROUP BY tw.code, tw.name
ORDER BY tw.code
"""
)

_OVERDUE_SQL = text(
    """
SELECT l.id, l.area_code, l.township_code, l.household_id, l.enterprise_name, l.principal, l.due_on,
       LEAST(l.principal, GREATEST(COALESCE(SUM(r.amount), CAST(0 AS NUMERIC(14,2))),
                                   CAST(0 AS NUMERIC(14,2)))) AS recovered
FROM loan l
LEFT JOIN loan_repayment r ON r.loan_id = l.id AND r.paid_on <= CAST(:as_of AS date)
WHERE l.township_code = ANY(CAST(:townships AS varchar[]))
  AND l.due_on >= CAST(:start AS date) AND l.due_on <= CAST(:as_of AS date)
  AND l.product <> CAST(:enterprise AS text)
GROUP BY l.id
HAVING LEAST(l.principal, GREATEST(COALESCE(SUM(r.amount), CAST(0 AS NUMERIC(14,2))),
                                   CAST(0 AS NUMERIC(14,2)))) < l.principal
ORDER BY l.township_code, l.principal - LEAST(l.principal, COALESCE(SUM(r.amount), CAST(0 AS NUMERIC(14,2)))) DESC,
         l.id
"""
)


@dataclass
class OverdueLoan:
    loan_id: uuid.UUID
    area_code: str
    household_id: uuid.UUID | None
    enterprise_name: str | None
    principal: Decimal
    recovered: Decimal
    unpaid: Decimal
    due_on: date
    days_overdue: int


@dataclass
class TownshipRate:
    area_code: str
    name: str
    principal_due: Decimal
    principal_recovered: Decimal
    rate: Decimal | None
    band: Band
    loans_due: int
    loans_overdue: int
    rank: int | None = None
    overdue_loans: list[OverdueLoan] = field(default_factory=list)


@dataclass
class RiskReport:
    area_code: str
    period_start: date
    as_of: date
    policy_id: uuid.UUID | None
    reward_threshold: Decimal
    penalty_threshold: Decimal
    principal_due: Decimal
    principal_recovered: Decimal
    rate: Decimal | None
    band: Band
    bands: dict[str, int]
    ranking: list[TownshipRate]
    at_risk: list[TownshipRate]


async def repayment_risk(session: AsyncSession, *, principal: Principal, area_code: str, as_of: date) -> RiskReport:
    if level_of(area_code) not in (Level.county, Level.township) or not visible(principal, area_code):
        raise not_found("area")
    start = date(as_of.year, 1, 1)
    resolved = await policy_for(session, county_code=county_of(area_code), on=as_of)
    policy = resolved.policy
    rows = (
        await session.execute(_TOWNSHIPS_SQL, {**bind("area", area_code), "start": start, "as_of": as_of,
                                               "enterprise": ENTERPRISE})
    ).all()
    townships = [
        TownshipRate(
            area_code=r.code, name=r.name, principal_due=r.principal_due, principal_recovered=r.principal_recovered,
            rate=rules.rate(r.principal_recovered, r.principal_due),
            band=rules.band(r.principal_recovered, r.principal_due, policy),
            loans_due=int(r.loans_due), loans_overdue=int(r.loans_overdue),
        )
        for r in rows
    ]
    # Ranking by exact rate (recovered/due compared by cross-multiplication), no-loans-due last.
    ranked = sorted(
        (t for t in townships if t.band is not Band.no_loans_due),
        key=lambda t: (-Fraction(t.principal_recovered) / Fraction(t.principal_due), t.area_code),
    )
    for i, t in enumerate(ranked, start=1):
        t.rank = i
    ranking = ranked + [t for t in townships if t.band is Band.no_loans_due]
    # Every township with an overdue household loan, whatever its band: a 96 % township with overdue
    # loans needs the same follow-up as a 91 % one; sorted by rate, weakest first.
    at_risk = [t for t in ranked if t.loans_overdue > 0]
    if at_risk:
        by_code = {t.area_code: t for t in at_risk}
        loans = (
            await session.execute(
                _OVERDUE_SQL, {"townships": list(by_code), "start": start, "as_of": as_of, "enterprise": ENTERPRISE}
            )
        ).all()
        for r in loans:
            by_code[r.township_code].overdue_loans.append(
                OverdueLoan(
                    loan_id=r.id, area_code=r.area_code, household_id=r.household_id,
                    enterprise_name=r.enterprise_name, principal=r.principal, recovered=r.recovered,
                    unpaid=r.principal - r.recovered, due_on=r.due_on, days_overdue=(as_of - r.due_on).days,
                )
            )
    at_risk.sort(key=lambda t: (Fraction(t.principal_recovered) / Fraction(t.principal_due), t.area_code))
    due = sum((t.principal_due for t in townships), Decimal("0.00"))
    recovered = sum((t.principal_recovered for t in townships), Decimal("0.00"))
    bands = {b.value: sum(1 for t in townships if t.band is b) for b in Band}
    return RiskReport(
        area_code=area_code, period_start=start, as_of=as_of, policy_id=resolved.policy_id,
        reward_threshold=policy.reward_threshold, penalty_threshold=policy.penalty_threshold,
        principal_due=due, principal_recovered=recovered, rate=rules.rate(recovered, due),
        band=rules.band(recovered, due, policy), bands=bands, ranking=ranking, at_risk=at_risk,
    )
