"""The set-based part of a screening upload: the checked rows COPY into a temporary table, then a few
statements match them to the registry and the monitored households by ID number, decide per household
(the expense rule on the household's summed amounts), open or reopen cycles, write the warnings routed
to village and cadre, and one result row per file row. Constants are typed (performance rule 1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import code_range
from fupin.auth.principal import Principal
from fupin.monitoring.models import Screening
from fupin.monitoring.policy import rules_on
from fupin.monitoring.rules import AMOUNT_SOURCES, CLOSED, SOURCE_CAUSE, ScreeningSource, Status
from fupin.monitoring.service import decision_due

DETAIL = {
    ScreeningSource.medical: "医保部门筛查:自付医疗费用超过监测标准",
    ScreeningSource.civil_affairs: "民政部门筛查:纳入低保或特困供养",
    ScreeningSource.disability: "残联筛查:新增残疾",
    ScreeningSource.housing: "住建部门筛查:住房安全问题",
    ScreeningSource.water: "水利部门筛查:饮水安全问题",
    ScreeningSource.disaster: "应急部门筛查:灾害损失超过监测标准",
}
Row = tuple[int, str, str, str, Decimal | None, date]

# Only the matched rows (a tenth of a department's file, often far fewer) go into the match table; the
# result rows are written straight from the staged file in one statement at the end.
_MATCH = """
CREATE TEMP TABLE {m} ON COMMIT DROP AS
SELECT s.row_no, s.amount, hm.household_id, mr.id AS mh_id, hm.area_code, hm.household_id AS hkey
FROM {stage} s
JOIN household_member hm ON hm.id_number = s.id_number AND hm.active
     AND hm.area_code >= CAST(:low AS varchar) AND hm.area_code < CAST(:high AS varchar)
LEFT JOIN monitored_household mr ON mr.household_id = hm.household_id
UNION ALL
SELECT s.row_no, s.amount, NULL, mp.monitored_household_id, mp.area_code, mp.monitored_household_id
FROM {stage} s
JOIN monitored_person mp ON mp.id_number = s.id_number AND mp.active
     AND mp.area_code >= CAST(:low AS varchar) AND mp.area_code < CAST(:high AS varchar)
WHERE NOT EXISTS (SELECT 1 FROM household_member x WHERE x.id_number = s.id_number AND x.active
                  AND x.area_code >= CAST(:low AS varchar) AND x.area_code < CAST(:high AS varchar))
"""

# Per household: the amounts added up, the income and persons the rule weighs (the monitoring record's
# last verified figures, else the registry's), and the outcome. Constants are typed (performance rule 1).
_HOUSEHOLDS = """
CREATE TEMP TABLE {h} ON COMMIT DROP AS
WITH k AS (
  SELECT hkey, household_id, mh_id, SUM(amount) AS total FROM {m} WHERE hkey IS NOT NULL
  GROUP BY hkey, household_id, mh_id
), f AS (
  SELECT k.*, reg.status AS reg_status, mh.status AS mh_status,
         COALESCE(mh.income_per_capita, reg.income_per_capita) AS income,
         COALESCE(mh.persons, (SELECT count(*) FROM household_member x
                               WHERE x.household_id = k.household_id AND x.active)) AS persons
  FROM k LEFT JOIN household reg ON reg.id = k.household_id LEFT JOIN monitored_household mh ON mh.id = k.mh_id
), o AS (
  SELECT f.*, CASE
    WHEN f.reg_status IS NOT NULL AND f.reg_status <> 'exited' THEN 'in_registry'
    WHEN CAST(:weighs_amount AS boolean)
         AND NOT COALESCE(f.total, CAST(0 AS NUMERIC(14,2))) > CAST(:ratio AS NUMERIC(9,6)) * f.income * f.persons
         THEN 'below_threshold'
    WHEN f.mh_id IS NOT NULL AND f.mh_status NOT IN (CAST(:dismissed AS text), CAST(:eliminated AS text))
         THEN 'attached'
    ELSE 'warning' END AS outcome
  FROM f
)
SELECT o.*, CASE WHEN o.outcome = 'warning' AND o.mh_id IS NULL THEN gen_random_uuid() END AS new_mh_id,
       CASE WHEN o.outcome IN ('warning', 'attached') THEN gen_random_uuid() END AS warning_id
FROM o
"""

_NEW_HOUSEHOLDS = """
INSERT INTO monitored_household (id, area_code, county, household_id, head_name, address, kind, cause, status, cycle,
  persons, income_per_capita, opened_on, decision_due_on, created_by, created_at, updated_at)
SELECT h.new_mh_id, reg.area_code, left(reg.area_code, 6), reg.id, reg.head_name, reg.address, 'unstable_exited', CAST(:cause AS varchar), 'warned', 1,
       GREATEST(h.persons, 1), reg.income_per_capita, CAST(:on AS date), CAST(:due AS date), CAST(:actor AS varchar),
       now(), now()
FROM {h} h JOIN household reg ON reg.id = h.household_id WHERE h.new_mh_id IS NOT NULL
"""

_REOPEN = """
UPDATE monitored_household mh SET cycle = mh.cycle + 1, status = 'warned', cause = CAST(:cause AS varchar),
  opened_on = CAST(:on AS date), decision_due_on = CAST(:due AS date), decided_on = NULL, measure_due_on = NULL, stable_since = NULL, closed_on = NULL,
  updated_at = now()
FROM {h} h WHERE mh.id = h.mh_id AND h.outcome = 'warning'
"""

_OPEN_STEPS = """
INSERT INTO monitoring_step (id, area_code, county, monitored_household_id, cycle, step, from_status, to_status, role,
  actor, on_date, opinion, details, recorded_at)
SELECT gen_random_uuid(), mh.area_code, left(mh.area_code, 6), mh.id, mh.cycle, 'open', COALESCE(h.mh_status, 'none'), 'warned',
       CAST(:role AS varchar), CAST(:actor AS varchar), CAST(:on AS date), '', jsonb_build_object('decision_due_on', CAST(CAST(:due AS date) AS text),
                                        'screening_id', CAST(CAST(:sid AS uuid) AS text)),
       now()
FROM {h} h JOIN monitored_household mh ON mh.id = COALESCE(h.mh_id, h.new_mh_id) WHERE h.outcome = 'warning'
"""

# Routed like `access.responsible_cadre`: a registry household's longest-standing active pairing with an
# active cadre, else the cadre named on the monitored household.
_WARNINGS = """
INSERT INTO monitoring_warning (id, area_code, county, monitored_household_id, cycle, source, screening_id,
  screening_source, cause, amount, detail, raised_on, cadre_id, opened_cycle, created_by, created_at)
SELECT h.warning_id, mh.area_code, left(mh.area_code, 6), mh.id, mh.cycle, 'screening', CAST(:sid AS uuid), CAST(:source AS varchar),
       CAST(:cause AS varchar), h.total, CAST(:detail AS varchar), CAST(:on AS date),
       COALESCE((SELECT p.cadre_id FROM pairing p JOIN cadre c ON c.id = p.cadre_id
                 WHERE p.household_id = mh.household_id AND p.end_date IS NULL AND c.status = 'active'
                 ORDER BY p.start_date, p.id LIMIT 1), mh.cadre_id),
       h.outcome = 'warning', CAST(:actor AS varchar), now()
FROM {h} h JOIN monitored_household mh ON mh.id = COALESCE(h.mh_id, h.new_mh_id) WHERE h.warning_id IS NOT NULL
"""

# One result per file row, in file order (the primary key's order). Names are kept only of people
# matched in the area.
_ROWS = """
INSERT INTO screening_row (screening_id, row_no, area_code, county, id_masked, name, amount, event_on, outcome,
  monitored_household_id, household_id, warning_id)
SELECT CAST(:sid AS uuid), s.row_no, COALESCE(m.area_code, CAST(:county AS varchar)), left(COALESCE(m.area_code, CAST(:county AS varchar)), 6), s.id_masked,
       CASE WHEN m.hkey IS NULL THEN NULL ELSE s.name END, s.amount, s.event_on, COALESCE(h.outcome, 'unmatched'),
       COALESCE(h.mh_id, h.new_mh_id), m.household_id, h.warning_id
FROM {stage} s LEFT JOIN {m} m ON m.row_no = s.row_no LEFT JOIN {h} h ON h.hkey = m.hkey
ORDER BY s.row_no
"""

_COUNTS = """
UPDATE screening s SET
  matched = c.matched, warnings = c.warnings, attached = c.attached, below_threshold = c.below,
  in_registry = c.registry, unmatched = c.unmatched
FROM (SELECT count(*) FILTER (WHERE outcome <> 'unmatched') AS matched,
             count(*) FILTER (WHERE outcome = 'warning') AS warnings,
             count(*) FILTER (WHERE outcome = 'attached') AS attached,
             count(*) FILTER (WHERE outcome = 'below_threshold') AS below,
             count(*) FILTER (WHERE outcome = 'in_registry') AS registry,
             count(*) FILTER (WHERE outcome = 'unmatched') AS unmatched
      FROM screening_row WHERE screening_id = CAST(:sid AS uuid)) c
WHERE s.id = CAST(:sid AS uuid)
"""


async def _copy(session: AsyncSession, table: str, rows: list[tuple[Any, ...]]) -> None:
    await session.execute(text(
        f"CREATE TEMP TABLE {table} (row_no integer, id_number text, id_masked text, name text, "
        "amount numeric(14,2), event_on date) ON COMMIT DROP"))
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table, records=rows,
                                       columns=["row_no", "id_number", "id_masked", "name", "amount", "event_on"])


async def apply(session: AsyncSession, *, principal: Principal, screening: Screening, rows: list[Row]) -> None:
    """Apply the checked rows of `screening` in the caller's transaction (the temporary tables drop at commit)."""
    source = ScreeningSource(screening.source)
    resolved = await rules_on(session, area_code=screening.area_code, on=screening.received_on)
    low, high = code_range(screening.area_code)
    suffix = screening.id.hex
    names = {"stage": f"screening_stage_{suffix}", "m": f"screening_match_{suffix}", "h": f"screening_hh_{suffix}"}
    params: dict[str, Any] = {
        "low": low, "high": high, "sid": screening.id, "county": screening.area_code, "source": source.value,
        "cause": SOURCE_CAUSE[source].value, "detail": DETAIL[source], "on": screening.received_on,
        "due": await decision_due(session, area_code=screening.area_code, raised_on=screening.received_on),
        "actor": principal.username, "role": principal.role.value, "ratio": resolved.rules.expense_ratio,
        "weighs_amount": source in AMOUNT_SOURCES, "dismissed": Status.dismissed.value,
        "eliminated": Status.eliminated.value,
    }
    assert {Status.dismissed, Status.eliminated} == CLOSED
    await _copy(session, names["stage"], list(rows))
    for sql in (_MATCH, _HOUSEHOLDS, _NEW_HOUSEHOLDS, _REOPEN, _OPEN_STEPS, _WARNINGS, _ROWS, _COUNTS):
        # Each statement takes the parameters it names; SQLAlchemy ignores the rest.
        await session.execute(text(sql.format(**names)), params)
    await session.refresh(screening)
