"""Departmental screening (部门筛查预警): a file from medical insurance, civil affairs, the disability
federation, housing, water or disaster reports, matched to people by ID number; every household above
the policy threshold gets a warning routed to its village and its paired cadre.

All or nothing: every row is parsed and checked first (a malformed or repeated ID number, a missing
name, a bad amount or date each get their own error, and the file is refused whole). Then COPY into a
temporary table and a few set-based statements: match, decide per household, open or reopen cycles,
write the warnings and one result row per file row. The same file twice is refused.

Per household the amounts of its matched rows are added up: the expense rule weighs the household's
medical cost (or disaster loss), not one bill. Sources without an amount (低保/特困, disability, housing,
water) signal a risk by the match itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of
from fupin.areas.scope import code_range, scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, DomainError, RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.importer import _sheet_rows as sheet_rows  # the streaming, zip-bomb-safe .xlsx reader
from fupin.households.schemas import RowError
from fupin.monitoring.models import Screening, ScreeningRow
from fupin.monitoring.policy import rules_on
from fupin.monitoring.rules import AMOUNT_SOURCES, CLOSED, SOURCE_CAUSE, RowOutcome, ScreeningSource, Status
from fupin.monitoring.service import decision_due
from fupin.pairing.access import in_directory

MAX_ROWS = 1_000_000
MAX_ERRORS = 1_000  # listed in the refusal; the count covers them all
COLUMNS: list[tuple[str, str]] = [("id_number", "身份证号"), ("name", "姓名"), ("amount", "金额"), ("event_on", "日期")]
LABEL = dict(COLUMNS)
DETAIL = {
    ScreeningSource.medical: "医保部门筛查:自付医疗费用超过监测标准",
    ScreeningSource.civil_affairs: "民政部门筛查:纳入低保或特困供养",
    ScreeningSource.disability: "残联筛查:新增残疾",
    ScreeningSource.housing: "住建部门筛查:住房安全问题",
    ScreeningSource.water: "水利部门筛查:饮水安全问题",
    ScreeningSource.disaster: "应急部门筛查:灾害损失超过监测标准",
}
_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ScreeningRejected(DomainError):
    status = 422
    code = "screening.file_invalid"


@dataclass
class Parsed:
    """Rows ready for COPY: (row_no, id_number, id_masked, name, amount, event_on)."""

    rows: list[tuple[int, str, str, str, Decimal | None, date]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def bad(self, row: int, key: str, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row=row, column=LABEL.get(key, key), code=code, message=message))


def _refuse(code: str, en: str, zh: str) -> RuleViolation:
    return RuleViolation(code, en, zh)


def _csv_rows(content: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        body = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse("screening.not_utf8", "a CSV file must be UTF-8", "CSV 文件须为 UTF-8 编码") from None
    for n, cells in enumerate(csv.reader(io.StringIO(body, newline="")), start=1):
        yield n, [c.strip() for c in cells]


def _table(content: bytes) -> Iterator[tuple[int, list[str]]]:
    if content[:4] == b"PK\x03\x04":
        return sheet_rows(content)
    return _csv_rows(content)


def _header(cells: list[str], source: ScreeningSource) -> dict[str, int]:
    index = {key: i for i, h in enumerate(cells) for key, label in COLUMNS if h in (key, label)}
    required = ["id_number", "name", "event_on"] + (["amount"] if source in AMOUNT_SOURCES else [])
    missing = [LABEL[k] for k in required if k not in index]
    if missing:
        raise ScreeningRejected(
            "screening.file_invalid", f"missing column(s) {', '.join(missing)}", f"缺少列 {'、'.join(missing)}",
            extra={"error_count": len(missing), "errors": [
                RowError(row=1, column=m, code="screening.column_missing", message=f"missing column {m}").model_dump()
                for m in missing]},
        )
    return index


def _amount(raw: str, n: int, out: Parsed, required: bool) -> Decimal | None:
    if not raw:
        if required:
            out.bad(n, "amount", "screening.required", "value required")
        return None
    if not _AMOUNT.fullmatch(raw):
        out.bad(n, "amount", "screening.bad_amount", "not an amount in yuan with at most 2 decimals")
        return None
    return Decimal(raw)


def _day(raw: str, n: int, out: Parsed, today: date) -> date | None:
    day = None
    if _DAY.fullmatch(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
    if day is None or not date(2000, 1, 1) <= day <= today:
        out.bad(n, "event_on", "screening.bad_date", "not a date YYYY-MM-DD up to today")
        return None
    return day


def _cell(cells: list[str], i: int | None) -> str:
    return cells[i] if i is not None and i < len(cells) else ""


def _parse_row(n: int, cells: list[str], index: dict[str, int], source: ScreeningSource, today: date,
               out: Parsed, seen: dict[str, int]) -> None:
    raw_id, name = _cell(cells, index["id_number"]), _cell(cells, index["name"])
    number = ""
    if not raw_id:
        out.bad(n, "id_number", "screening.required", "value required")
    else:
        try:
            number = household_rules.parse_id(raw_id, today=today).number
        except RuleViolation as e:
            out.bad(n, "id_number", e.code, e.message_en)
    if number and number in seen:
        out.bad(n, "id_number", "screening.duplicate", f"same ID number as row {seen[number]}")
    elif number:
        seen[number] = n
    if not name or len(name) > 50:
        out.bad(n, "name", "screening.bad_name", "a name of 1 to 50 characters is required")
    amount = _amount(_cell(cells, index.get("amount")), n, out, source in AMOUNT_SOURCES)
    day = _day(_cell(cells, index["event_on"]), n, out, today)
    if number and day is not None and not out.error_count:
        out.rows.append((n, number, household_rules.mask_id(number), name, amount, day))


def parse(content: bytes, source: ScreeningSource, *, today: date) -> Parsed:
    """Every row checked; rows are kept only while no error has been seen (the file is refused then)."""
    try:
        table = _table(content)
        _, header = next(table, (1, []))
        index = _header(header, source)
        out, seen = Parsed(), dict[str, int]()
        for n, cells in table:
            if not any(cells):
                continue
            if n > MAX_ROWS + 1:
                raise _refuse("screening.too_many_rows", f"at most {MAX_ROWS} rows", f"最多 {MAX_ROWS} 行")
            _parse_row(n, cells, index, source, today, out, seen)
    except (zipfile.BadZipFile, zlib.error, KeyError, ET.ParseError, ValueError, IndexError, csv.Error, EOFError,
            OSError, RuntimeError, NotImplementedError):  # every way a damaged .xlsx or CSV fails to read
        raise _refuse("screening.unreadable", "the file is neither a readable .xlsx nor a CSV",
                      "文件不是可读取的 .xlsx 或 CSV") from None
    if out.error_count:
        raise ScreeningRejected(
            "screening.file_invalid", f"{out.error_count} problems; nothing was applied",
            f"发现 {out.error_count} 处错误,未导入任何数据",
            extra={"error_count": out.error_count, "errors": [e.model_dump() for e in out.errors]},
        )
    if not out.rows:
        raise _refuse("screening.empty", "the file has no rows", "文件没有数据行")
    return out


async def upload(
    session: AsyncSession, *, principal: Principal, area_code: str, source: ScreeningSource, content: bytes,
    filename: str, received_on: date | None,
) -> Screening:
    """Apply a department's file for a county, all or nothing (see the module docstring)."""
    today = business_date()
    on = received_on or today
    if level_of(area_code) is not Level.county:
        raise _refuse("screening.not_county", "a screening file belongs to a county", "筛查文件须属于县级区划")
    if not visible(principal, area_code):
        raise not_found("area")
    if on > today:
        raise _refuse("monitoring.future_date", "the file cannot be received in the future", "接收日期不能晚于今天")
    digest = hashlib.sha256(content).hexdigest()
    exists = await session.scalar(select(Screening.id).where(
        Screening.area_code == area_code, Screening.source == source.value, Screening.content_sha256 == digest))
    if exists is not None:
        raise Conflict("screening.duplicate_file", "this file was applied already", "该文件已导入",
                       extra={"screening_id": str(exists)})
    parsed = parse(content, source, today=today)
    screening = Screening(
        id=uuid.uuid4(), area_code=area_code, source=source.value, filename=filename[:200], content_sha256=digest,
        received_on=on, rows=len(parsed.rows), matched=0, warnings=0, attached=0, below_threshold=0, in_registry=0,
        unmatched=0, created_by=principal.username,
    )
    session.add(screening)
    await session.flush()
    await _apply(session, principal, screening, parsed)
    await audit.record(session, principal, action="monitoring.screening.upload", entity="screening",
                       entity_id=screening.id, area_code=area_code,
                       after={"source": source, "rows": screening.rows, "matched": screening.matched,
                              "warnings": screening.warnings, "attached": screening.attached,
                              "sha256": digest})
    return screening


# --- the set-based part ------------------------------------------------------------------------------

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
INSERT INTO monitored_household (id, area_code, household_id, head_name, address, kind, cause, status, cycle,
  persons, income_per_capita, opened_on, decision_due_on, created_by, created_at, updated_at)
SELECT h.new_mh_id, reg.area_code, reg.id, reg.head_name, reg.address, 'unstable_exited', CAST(:cause AS varchar), 'warned', 1,
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
INSERT INTO monitoring_step (id, area_code, monitored_household_id, cycle, step, from_status, to_status, role,
  actor, on_date, opinion, details, recorded_at)
SELECT gen_random_uuid(), mh.area_code, mh.id, mh.cycle, 'open', COALESCE(h.mh_status, 'none'), 'warned',
       CAST(:role AS varchar), CAST(:actor AS varchar), CAST(:on AS date), '', jsonb_build_object('decision_due_on', CAST(CAST(:due AS date) AS text),
                                        'screening_id', CAST(CAST(:sid AS uuid) AS text)),
       now()
FROM {h} h JOIN monitored_household mh ON mh.id = COALESCE(h.mh_id, h.new_mh_id) WHERE h.outcome = 'warning'
"""

# Routed like `access.responsible_cadre`: a registry household's longest-standing active pairing with an
# active cadre, else the cadre named on the monitored household.
_WARNINGS = """
INSERT INTO monitoring_warning (id, area_code, monitored_household_id, cycle, source, screening_id,
  screening_source, cause, amount, detail, raised_on, cadre_id, opened_cycle, created_by, created_at)
SELECT h.warning_id, mh.area_code, mh.id, mh.cycle, 'screening', CAST(:sid AS uuid), CAST(:source AS varchar),
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
INSERT INTO screening_row (screening_id, row_no, area_code, id_masked, name, amount, event_on, outcome,
  monitored_household_id, household_id, warning_id)
SELECT CAST(:sid AS uuid), s.row_no, COALESCE(m.area_code, CAST(:county AS varchar)), s.id_masked,
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


async def _apply(session: AsyncSession, principal: Principal, screening: Screening, parsed: Parsed) -> None:
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
    await _copy(session, names["stage"], list(parsed.rows))
    for sql in (_MATCH, _HOUSEHOLDS, _NEW_HOUSEHOLDS, _REOPEN, _OPEN_STEPS, _WARNINGS, _ROWS, _COUNTS):
        statement = text(sql.format(**names))
        await session.execute(statement, {k: v for k, v in params.items() if f":{k}" in sql})
    await session.refresh(screening)


# --- reads ---------------------------------------------------------------------------------------------


async def get(session: AsyncSession, *, principal: Principal, screening_id: uuid.UUID) -> Screening:
    """A file is the county's: readable from every township and village in it (its rows are not)."""
    row = await session.scalar(select(Screening).where(Screening.id == screening_id,
                                                       in_directory(principal, Screening.area_code)))
    if row is None:
        raise not_found("screening")
    return row


async def list_screenings(
    session: AsyncSession, *, principal: Principal, source: ScreeningSource | None, limit: int,
) -> list[Screening]:
    stmt = select(Screening).where(in_directory(principal, Screening.area_code))
    if source is not None:
        stmt = stmt.where(Screening.source == source.value)
    return list((await session.scalars(stmt.order_by(Screening.created_at.desc(), Screening.id).limit(limit))).all())


async def rows(
    session: AsyncSession, *, principal: Principal, screening_id: uuid.UUID, outcome: RowOutcome | None,
    after_row: int, limit: int,
) -> list[ScreeningRow]:
    screening = await get(session, principal=principal, screening_id=screening_id)
    stmt = scoped(select(ScreeningRow), principal, ScreeningRow.area_code).where(
        ScreeningRow.screening_id == screening.id, ScreeningRow.row_no > after_row)
    if outcome is not None:
        stmt = stmt.where(ScreeningRow.outcome == outcome.value)
    return list((await session.scalars(stmt.order_by(ScreeningRow.row_no).limit(limit))).all())
