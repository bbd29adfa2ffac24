"""Pairing reports, each one set-based SQL over an area (and a period): coverage, visit rate,
workload per unit and cadre, and help-plan gaps. Rates are exact Decimals from integer counts; an
area without households gives a null rate and a note, never a division error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas import service as area_service
from fupin.areas.scope import bind, within_sql
from fupin.auth.principal import Principal
from fupin.pairing import rules

NO_HOUSEHOLDS = "no households"
NO_PAIRED = "no paired households"
LIST_CAP = 2000  # rows in an attached list; the counts always cover the whole area


async def _area_range(session: AsyncSession, principal: Principal, area: str) -> dict[str, str]:
    """Parameters of `within_sql(…, "scope")` for `area`, after checking the caller may see it (404 otherwise)."""
    await area_service.get_area(session, principal=principal, code=area)
    return bind("scope", area)


@dataclass
class Coverage:
    area_code: str
    as_of: date
    households: int
    covered: int
    rate: Any
    percent: Any
    note: str | None
    uncovered: list[dict[str, Any]] = field(default_factory=list)


_COVERED = """
    EXISTS (SELECT 1 FROM pairing p JOIN cadre c ON c.id = p.cadre_id
            WHERE p.household_id = h.id AND c.status = 'active'
              AND p.start_date <= :as_of AND (p.end_date IS NULL OR p.end_date > :as_of))
"""


async def pairing_coverage(session: AsyncSession, *, principal: Principal, area: str, as_of: date) -> Coverage:
    """Non-exited households with an active cadre on `as_of` ÷ non-exited households."""
    params = {**await _area_range(session, principal, area), "as_of": as_of}
    counts = (await session.execute(text(f"""
        SELECT count(*) AS households, count(*) FILTER (WHERE {_COVERED}) AS covered
        FROM household h
        WHERE {within_sql('h.area_code', 'scope')} AND h.status NOT IN ('exited', 'removed')
    """), params)).one()
    uncovered = (await session.execute(text(f"""
        SELECT h.id AS household_id, h.household_no, h.head_name, h.area_code
        FROM household h
        WHERE {within_sql('h.area_code', 'scope')} AND h.status NOT IN ('exited', 'removed') AND NOT {_COVERED}
        ORDER BY h.area_code, h.household_no LIMIT {LIST_CAP}
    """), params)).mappings().all()
    r, pct = rules.rate(counts.covered, counts.households)
    return Coverage(area, as_of, counts.households, counts.covered, r, pct,
                    NO_HOUSEHOLDS if counts.households == 0 else None, [dict(u) for u in uncovered])


@dataclass
class VisitRate:
    area_code: str
    period_start: date
    period_end: date
    paired_households: int
    meeting: int
    rate: Any
    percent: Any
    note: str | None
    overdue: list[dict[str, Any]] = field(default_factory=list)


# Households paired at any time in the period; the county's visit rule in effect at the period start
# (default 1 per month); one bucket per rule period (month or quarter) touching the period; a
# household meets the rule when every bucket holds at least the required visits.
_VISIT_RATE = f"""
WITH paired AS (
    SELECT h.id, h.household_no, h.head_name, h.area_code, substr(h.area_code, 1, 6) || '000000' AS county
    FROM household h
    WHERE {within_sql('h.area_code', 'scope')}
      AND EXISTS (SELECT 1 FROM pairing p WHERE p.household_id = h.id
                  AND p.start_date <= :pend AND (p.end_date IS NULL OR p.end_date >= :pstart))
), rule AS (
    SELECT c.county, coalesce(s.visits_required, 1) AS required, coalesce(s.visit_period, 'month') AS unit
    FROM (SELECT DISTINCT county FROM paired) c
    LEFT JOIN LATERAL (
        SELECT ps.visits_required, ps.visit_period FROM pairing_setting ps
        WHERE ps.area_code = c.county AND ps.effective_from <= :pstart
        ORDER BY ps.effective_from DESC LIMIT 1
    ) s ON true
), bucket AS (
    SELECT r.county, r.required, b::date AS bstart,
           (b + CASE r.unit WHEN 'quarter' THEN interval '3 months' ELSE interval '1 month' END)::date AS bend
    FROM rule r,
         generate_series(date_trunc(r.unit, CAST(:pstart AS timestamp)), CAST(:pend AS timestamp),
                         CASE r.unit WHEN 'quarter' THEN interval '3 months' ELSE interval '1 month' END) AS b
), per AS (
    SELECT p.id, b.required, count(v.id) AS n
    FROM paired p
    JOIN bucket b ON b.county = p.county
    LEFT JOIN visit v ON v.household_id = p.id AND v.visit_date >= b.bstart AND v.visit_date < b.bend
    GROUP BY p.id, b.bstart, b.required
), verdict AS (
    SELECT id, bool_and(n >= required) AS ok, sum(n)::int AS visits, sum(required)::int AS required
    FROM per GROUP BY id
)
"""


async def visit_rate(session: AsyncSession, *, principal: Principal, area: str, period: str) -> VisitRate:
    pstart, pend = rules.parse_period(period)
    params = {**await _area_range(session, principal, area), "pstart": pstart, "pend": pend}
    counts = (await session.execute(text(_VISIT_RATE + """
        SELECT count(*) AS paired, count(*) FILTER (WHERE ok) AS meeting FROM verdict
    """), params)).one()
    overdue = (await session.execute(text(_VISIT_RATE + f"""
        SELECT p.id AS household_id, p.household_no, p.head_name, p.area_code, v.visits, v.required,
               coalesce(cad.ids, ARRAY[]::uuid[]) AS cadre_ids, coalesce(cad.names, ARRAY[]::text[]) AS cadre_names
        FROM verdict v JOIN paired p ON p.id = v.id
        LEFT JOIN LATERAL (
            SELECT array_agg(c.id ORDER BY c.name, c.id) AS ids, array_agg(c.name::text ORDER BY c.name, c.id) AS names
            FROM pairing pr JOIN cadre c ON c.id = pr.cadre_id
            WHERE pr.household_id = p.id AND pr.start_date <= :pend
              AND (pr.end_date IS NULL OR pr.end_date >= :pend)
        ) cad ON true
        WHERE NOT v.ok
        ORDER BY p.area_code, p.household_no LIMIT {LIST_CAP}
    """), params)).mappings().all()
    r, pct = rules.rate(counts.meeting, counts.paired)
    return VisitRate(area, pstart, pend, counts.paired, counts.meeting, r, pct,
                     NO_PAIRED if counts.paired == 0 else None, [dict(o) for o in overdue])


async def workload(session: AsyncSession, *, principal: Principal, area: str, period: str) -> dict[str, Any]:
    """Per cadre of the area's county: active households and visits in the period, both inside `area`;
    per unit: the same summed over its cadres."""
    pstart, pend = rules.parse_period(period)
    params = {**await _area_range(session, principal, area), "county": area[:6] + "000000", "pstart": pstart, "pend": pend}
    cadres = (await session.execute(text(f"""
        SELECT c.id AS cadre_id, c.name, c.unit_id, c.status,
               (SELECT count(DISTINCT p.household_id) FROM pairing p
                 WHERE p.cadre_id = c.id AND p.end_date IS NULL AND {within_sql('p.area_code', 'scope')})::int AS active_households,
               (SELECT count(*) FROM visit v
                 WHERE v.cadre_id = c.id AND {within_sql('v.area_code', 'scope')}
                   AND v.visit_date BETWEEN :pstart AND :pend)::int AS visits
        FROM cadre c WHERE c.area_code = :county
        ORDER BY c.name, c.id
    """), params)).mappings().all()
    units = (await session.execute(text(f"""
        SELECT u.id AS unit_id, u.name,
               (SELECT count(*) FROM cadre c WHERE c.unit_id = u.id)::int AS cadres,
               (SELECT count(DISTINCT p.household_id) FROM pairing p JOIN cadre c ON c.id = p.cadre_id
                 WHERE c.unit_id = u.id AND p.end_date IS NULL AND {within_sql('p.area_code', 'scope')})::int AS active_households,
               (SELECT count(*) FROM visit v JOIN cadre c ON c.id = v.cadre_id
                 WHERE c.unit_id = u.id AND {within_sql('v.area_code', 'scope')}
                   AND v.visit_date BETWEEN :pstart AND :pend)::int AS visits
        FROM helping_unit u WHERE u.area_code = :county
        ORDER BY u.name, u.id
    """), params)).mappings().all()
    return {"area_code": area, "period_start": pstart, "period_end": pend,
            "units": [dict(u) for u in units], "cadres": [dict(c) for c in cadres]}


async def plan_gaps(
    session: AsyncSession, *, principal: Principal, area: str, year: int, as_of: date
) -> dict[str, Any]:
    """Non-exited households without a plan for `year`, whose plan has no (live) measure, or whose
    plan has a measure past its target date that is neither done nor cancelled on `as_of`."""
    params = {**await _area_range(session, principal, area), "year": year, "as_of": as_of}
    rows = (await session.execute(text(f"""
        SELECT h.id AS household_id, h.household_no, h.head_name, h.area_code, hp.id AS plan_id,
               CASE WHEN hp.id IS NULL THEN 'no_plan'
                    WHEN coalesce(m.live, 0) = 0 THEN 'no_measure'
                    ELSE 'overdue_measure' END AS problem,
               coalesce(m.overdue, 0)::int AS overdue_measures
        FROM household h
        LEFT JOIN help_plan hp ON hp.household_id = h.id AND hp.year = :year
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE hm.status <> 'cancelled') AS live,
                   count(*) FILTER (WHERE hm.status IN ('planned', 'in_progress') AND hm.target_date < :as_of) AS overdue
            FROM help_measure hm WHERE hm.plan_id = hp.id
        ) m ON true
        WHERE {within_sql('h.area_code', 'scope')} AND h.status NOT IN ('exited', 'removed')
          AND (hp.id IS NULL OR coalesce(m.live, 0) = 0 OR m.overdue > 0)
        ORDER BY h.area_code, h.household_no LIMIT {LIST_CAP}
    """), params)).mappings().all()
    return {"area_code": area, "year": year, "as_of": as_of, "households": [dict(r) for r in rows]}
