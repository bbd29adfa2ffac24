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
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, level_of
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, DomainError, RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.importer import _sheet_rows as sheet_rows  # the streaming, zip-bomb-safe .xlsx reader
from fupin.households.schemas import RowError
from fupin.monitoring import screening_sql
from fupin.monitoring.models import Screening, ScreeningRow
from fupin.monitoring.rules import AMOUNT_SOURCES, RowOutcome, ScreeningSource
from fupin.paging import after, page
from fupin.pairing.access import in_directory

MAX_ROWS = 1_000_000
MAX_ERRORS = 1_000  # listed in the refusal; the count covers them all
COLUMNS: list[tuple[str, str]] = [("id_number", "身份证号"), ("name", "姓名"), ("amount", "金额"), ("event_on", "日期")]
LABEL = dict(COLUMNS)
_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ScreeningRejected(DomainError):
    status = 422
    code = "screening.file_invalid"


@dataclass
class Parsed:
    """Rows ready for COPY: (row_no, id_number, id_masked, name, amount, event_on)."""

    rows: list[screening_sql.Row] = field(default_factory=list)
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
    await screening_sql.apply(session, principal=principal, screening=screening, rows=parsed.rows)
    await audit.record(session, principal, action="monitoring.screening.upload", entity="screening",
                       entity_id=screening.id, area_code=area_code,
                       after={"source": source, "rows": screening.rows, "matched": screening.matched,
                              "warnings": screening.warnings, "attached": screening.attached,
                              "sha256": digest})
    return screening


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
    cursor: str | None = None,
) -> tuple[list[Screening], str | None]:
    stmt = select(Screening).where(in_directory(principal, Screening.area_code))
    if source is not None:
        stmt = stmt.where(Screening.source == source.value)
    stmt = after(stmt, (Screening.created_at.desc(), Screening.id), cursor, limit)  # newest first
    return page((await session.scalars(stmt)).all(), limit, lambda s: (s.created_at, s.id))


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
