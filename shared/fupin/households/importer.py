"""Excel 台账 import: parse every row, validate every row, then write all or nothing, set-based.

One row per member; rows with the same household number (and village) form one household. Household
columns must agree across a household's rows. Imported households enter as `registered`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
import zipfile
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import xlsx
from fupin.areas.codes import prefix_of
from fupin.areas.models import Area
from fupin.areas.scope import in_scope, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import DomainError, RuleViolation
from fupin.households import rules
from fupin.households.models import Household, HouseholdEvent, Member
from fupin.households.schemas import ImportResult, RowError
from fupin.households.service import id_owners

MAX_ROWS = 200_000
MAX_UNZIPPED = 200 * 1024 * 1024
# Entity expansion: the stdlib parser uses expat >= 2.4, which refuses billion-laughs amplification.
# key, header (Chinese, as offices write it), required
COLUMNS: list[tuple[str, str, bool]] = [
    ("household_no", "户编号", True),
    ("area_code", "村代码", True),
    ("address", "地址", False),
    ("category", "贫困户属性", True),
    ("main_cause", "主要致贫原因", True),
    ("secondary_causes", "其他致贫原因", False),
    ("income_per_capita", "人均纯收入", False),
    ("family_planning", "计生户", False),
    ("veteran", "退役军人", False),
    ("year_identified", "识别年度", True),
    ("name", "姓名", True),
    ("id_number", "身份证号", True),
    ("relation", "与户主关系", True),
    ("labour", "劳动能力", True),
    ("full_civil_capacity", "完全民事行为能力", False),
    ("in_school", "在校生", False),
    ("health", "健康状况", False),
    ("disability", "残疾情况", False),
]
HEADERS = [h for _, h, _ in COLUMNS]
HOUSEHOLD_KEYS = ("area_code", "address", "category", "main_cause", "secondary_causes", "income_per_capita",
                  "family_planning", "veteran", "year_identified")
_TRUE = {"是", "y", "yes", "true", "1", "√"}
_FALSE = {"否", "n", "no", "false", "0", ""}


class ImportRejected(DomainError):
    status = 422
    code = "household.import_invalid"


@dataclass
class _Report:
    errors: list[RowError] = field(default_factory=list)

    def add(self, row: int, column: str, code: str, message: str) -> None:
        self.errors.append(RowError(row=row, column=column, code=code, message=message))


def _bool(v: str) -> bool | None:
    low = v.lower()
    return True if low in _TRUE else False if low in _FALSE else None


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _col_index(ref: str) -> int:
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


def _all_text(el: ET.Element) -> str:
    return "".join(t.text or "" for t in el.iter(f"{_NS}t"))


def _sheet_rows(content: bytes) -> Iterator[tuple[int, list[str]]]:
    """Stream the first worksheet's rows as text, straight from the OOXML parts.

    openpyxl builds an object per cell and is several times slower; a roster is plain values, so
    shared strings, inline strings, numbers and booleans are all we read.
    """
    zf = zipfile.ZipFile(io.BytesIO(content))
    if sum(i.file_size for i in zf.infolist()) > MAX_UNZIPPED:  # zip bomb
        raise ValueError("workbook too large when unpacked")
    names = set(zf.namelist())
    book = ET.fromstring(zf.read("xl/workbook.xml"))
    first = book.find(f"{_NS}sheets/{_NS}sheet")
    if first is None:
        raise KeyError("no sheet")
    rid = first.get(f"{_REL_NS}id")
    rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    target = next(r.get("Target", "") for r in rels.iter(f"{_PKG_REL_NS}Relationship") if r.get("Id") == rid)
    path = target.lstrip("/") if target.startswith("/") else "xl/" + target
    shared: list[str] = []
    if "xl/sharedStrings.xml" in names:
        shared = [_all_text(si) for si in ET.fromstring(zf.read("xl/sharedStrings.xml")).iter(f"{_NS}si")]
    auto_row = 0
    with zf.open(path) as fh:
        for _, el in ET.iterparse(fh, events=("end",)):
            if el.tag != f"{_NS}row":
                continue
            auto_row = int(el.get("r") or auto_row + 1)
            values: list[str] = []
            for pos, c in enumerate(el.iter(f"{_NS}c")):
                ref = c.get("r")
                idx = _col_index(ref) if ref else pos
                kind = c.get("t", "n")
                if kind == "inlineStr":
                    val = _all_text(c)
                else:
                    v = c.find(f"{_NS}v")
                    raw = v.text or "" if v is not None else ""
                    val = shared[int(raw)] if kind == "s" and raw else raw
                    if kind == "n" and raw.endswith(".0"):
                        val = raw[:-2]
                if idx >= len(values):
                    values.extend([""] * (idx + 1 - len(values)))
                values[idx] = val.strip()
            el.clear()
            yield auto_row, values


def read_rows(content: bytes) -> list[tuple[int, dict[str, str]]]:
    try:
        rows = _sheet_rows(content)
        _, header = next(rows, (1, []))
    except (zipfile.BadZipFile, KeyError, ET.ParseError, StopIteration, ValueError):
        raise RuleViolation("import.not_xlsx", "the file is not an .xlsx workbook", "文件不是 .xlsx 工作簿") from None
    index: dict[str, int] = {}
    for key, label, required in COLUMNS:
        for i, h in enumerate(header):
            if h in (label, key):
                index[key] = i
        if required and key not in index:
            raise ImportRejected("household.import_invalid", f"missing column {label}", f"缺少列 {label}", extra={
                "errors": [RowError(row=1, column=label, code="import.column_missing",
                                    message=f"missing column {label}").model_dump()]})
    out: list[tuple[int, dict[str, str]]] = []
    try:
        for n, cells in rows:
            if len(out) >= MAX_ROWS:
                raise RuleViolation("import.too_many_rows", f"at most {MAX_ROWS} rows", f"最多 {MAX_ROWS} 行")
            vals = {k: cells[i] if i < len(cells) else "" for k, i in index.items()}
            if any(vals.values()):
                out.append((n, vals))
    except (KeyError, ET.ParseError, ValueError, IndexError):
        raise RuleViolation("import.not_xlsx", "the worksheet cannot be read", "工作表无法读取") from None
    return out


def _label(key: str) -> str:
    return next(lbl for k, lbl, _ in COLUMNS if k == key)


Key = tuple[str, str]  # (village code, household number): one household of the roster
Bad = Callable[[str, str, str], None]  # (column key, code, message) -> records a problem in the current row


@dataclass
class _Roster:
    """The parsed roster: households by key (their columns from their first row), members in row order."""

    households: dict[Key, dict[str, Any]] = field(default_factory=dict)
    first_row: dict[Key, int] = field(default_factory=dict)
    member_rows: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    members: list[dict[str, Any]] = field(default_factory=list)
    seen_ids: dict[str, int] = field(default_factory=dict)  # ID number -> its first row


async def import_roster(session: AsyncSession, *, principal: Principal, content: bytes) -> ImportResult:
    """Parse and check every row, then the rows against each other, then against the database; write all
    rows only when nothing was found (every problem is reported, with its row and column)."""
    rows = read_rows(content)
    if not rows:
        raise RuleViolation("import.empty", "the roster has no rows", "台账没有数据行")
    rep = _Report()
    today = business_date()
    villages = set((await session.scalars(
        select(Area.code).where(Area.level == "village", in_scope(principal, Area.code))
    )).all())
    roster = _Roster()
    for n, r in rows:
        def bad(key: str, code: str, msg: str, n: int = n) -> None:
            rep.add(n, _label(key), code, msg)

        for key, _, required in COLUMNS:
            if required and not r.get(key):
                bad(key, "import.required", "value required")
        hh = _household_of(r, bad, principal=principal, villages=villages, today=today)
        m = _member_of(r, bad, n, roster.seen_ids, today=today)
        _add_row(roster, n, hh, m, r.get("household_no", "")[:32], bad)
    _check_heads(roster, rep)
    await _check_database(session, principal, roster, rep)
    if rep.errors:
        rep.errors.sort(key=lambda e: (e.row, HEADERS.index(e.column) if e.column in HEADERS else 99))
        raise ImportRejected(
            "household.import_invalid", f"{len(rep.errors)} problems; nothing was imported",
            f"发现 {len(rep.errors)} 处错误,未导入任何数据",
            extra={"errors": [e.model_dump() for e in rep.errors]},
        )
    return await _write(session, principal, roster, today)


def _household_of(r: dict[str, str], bad: Bad, *, principal: Principal, villages: set[str],
                  today: date) -> dict[str, Any]:
    """One row's household columns, checked on their own."""
    hh: dict[str, Any] = {}
    area = r.get("area_code", "")
    if area and (area not in villages or not visible(principal, area)):
        bad("area_code", "import.unknown_village", "not a village in your area")
    hh["area_code"] = area
    hh["address"] = r.get("address", "")[:200]
    for key, labels in (("category", rules.CATEGORIES), ("main_cause", rules.CAUSES)):
        code = rules.code_of(r.get(key, ""), labels) if r.get(key) else None
        if r.get(key) and code is None:
            bad(key, f"import.unknown_{key}", f"unknown value {r[key]!r}")
        hh[key] = code
    secondary: list[str] = []
    for part in r.get("secondary_causes", "").replace("、", ",").replace(",", ",").split(","):
        if part.strip():
            code = rules.code_of(part, rules.CAUSES)
            if code is None:
                bad("secondary_causes", "import.unknown_secondary_causes", f"unknown cause {part.strip()!r}")
            else:
                secondary.append(code)
    hh["secondary_causes"] = secondary
    try:
        income = Decimal(r.get("income_per_capita") or "0")
        if income < 0 or income != income.quantize(Decimal("0.01")) or income >= Decimal("1e12"):
            raise InvalidOperation
        hh["income_per_capita"] = income
    except InvalidOperation:
        bad("income_per_capita", "import.bad_amount", "not an amount in yuan with at most 2 decimals")
        hh["income_per_capita"] = Decimal(0)
    for key in ("family_planning", "veteran"):
        b = _bool(r.get(key, ""))
        if b is None:
            bad(key, "import.bad_flag", "use 是 or 否")
        hh[key] = bool(b)
    year = r.get("year_identified", "")
    if year and not (year.isdigit() and 2000 <= int(year) <= today.year):
        bad("year_identified", "import.bad_year", "not a year")
    hh["year_identified"] = int(year) if year.isdigit() else None
    return hh


def _member_of(r: dict[str, str], bad: Bad, n: int, seen_ids: dict[str, int], *, today: date) -> dict[str, Any]:
    """One row's member columns, checked on their own; an ID number seen in an earlier row is a duplicate."""
    m: dict[str, Any] = {"name": r.get("name", "")[:50]}
    if r.get("id_number"):
        try:
            info = rules.parse_id(r["id_number"], today=today)
            m.update(id_number=info.number, sex=info.sex, birth_date=info.birth_date)
            if info.number in seen_ids:
                bad("id_number", "member.id_duplicate", f"same ID number as row {seen_ids[info.number]}")
            else:
                seen_ids[info.number] = n
        except RuleViolation as e:
            bad("id_number", e.code, e.message_en)
    rel = r.get("relation", "")
    if rel and rel not in rules.RELATIONS:
        bad("relation", "import.unknown_relation", f"unknown relation {rel!r}")
    m["relation"] = rel
    labour = rules.code_of(r.get("labour", ""), rules.LABOUR) if r.get("labour") else None
    if r.get("labour") and labour is None:
        bad("labour", "import.unknown_labour", f"unknown labour capacity {r['labour']!r}")
    m["labour"] = labour
    for key, default in (("full_civil_capacity", True), ("in_school", False)):
        raw = r.get(key, "")
        b = _bool(raw) if raw else default
        if b is None:
            bad(key, "import.bad_flag", "use 是 or 否")
        m[key] = bool(b)
    m["health"] = (r.get("health") or "健康")[:32]
    m["disability"] = r.get("disability") or None
    return m


def _add_row(roster: _Roster, n: int, hh: dict[str, Any], m: dict[str, Any], household_no: str, bad: Bad) -> None:
    """Group the row into its household; the household columns must agree with the household's first row."""
    key = (hh["area_code"], household_no)
    if key in roster.households:
        first = roster.households[key]
        for k in HOUSEHOLD_KEYS:
            if first[k] != hh[k]:
                bad(k, "import.household_inconsistent", f"differs from row {roster.first_row[key]} of the same household")
    else:
        roster.households[key] = {**hh, "household_no": household_no}
        roster.first_row[key] = n
    if m["relation"] == rules.HEAD:
        roster.households[key]["head_name"] = m["name"]
    m["_key"] = key
    m["_row"] = n
    roster.member_rows[key].append(n)
    roster.members.append(m)


def _check_heads(roster: _Roster, rep: _Report) -> None:
    """Across rows: every household has exactly one 户主."""
    heads: dict[Key, int] = defaultdict(int)
    for m in roster.members:
        if m["relation"] == rules.HEAD:
            heads[m["_key"]] += 1
    for key in roster.households:
        if heads[key] != 1:
            rep.add(roster.first_row[key], _label("relation"), "household.head_count",
                    f"household {key[1]} needs exactly one 户主, has {heads[key]}")


async def _check_database(session: AsyncSession, principal: Principal, roster: _Roster, rep: _Report) -> None:
    """Against the database, set-based: ID numbers of active members anywhere, household numbers taken."""
    owners = await id_owners(session, list(roster.seen_ids))
    for number, (_, area) in owners.items():
        extra = f" (area {area})" if visible(principal, area) else ""
        rep.add(roster.seen_ids[number], _label("id_number"), "member.id_duplicate",
                f"ID number already belongs to an active household{extra}")
    if roster.households:
        taken = await session.execute(
            text(
                "SELECT h.area_code, h.household_no FROM household h "
                "JOIN unnest(CAST(:areas AS text[]), CAST(:nos AS text[])) AS u(a, n) "
                "ON h.area_code = u.a AND h.household_no = u.n"
            ),
            {"areas": [k[0] for k in roster.households], "nos": [k[1] for k in roster.households]},
        )
        for area, no in taken.all():
            rep.add(roster.first_row[(area, no)], _label("household_no"), "household.number_taken",
                    "household number already used in the village")


async def _write(session: AsyncSession, principal: Principal, roster: _Roster, today: date) -> ImportResult:
    """Three bulk INSERTs (households, members, history), ids made here; one audit row for the import."""
    ids = {k: uuid.uuid4() for k in roster.households}
    hh_rows = [
        {
            "id": ids[k], "area_code": h["area_code"], "household_no": h["household_no"], "head_name": h["head_name"],
            "address": h["address"], "category": h["category"], "main_cause": h["main_cause"],
            "secondary_causes": h["secondary_causes"], "income_per_capita": h["income_per_capita"],
            "family_planning": h["family_planning"], "veteran": h["veteran"], "status": rules.H.registered,
            "year_identified": h["year_identified"], "year_exited": None,
        }
        for k, h in roster.households.items()
    ]
    m_rows = [
        {
            "id": uuid.uuid4(), "household_id": ids[m["_key"]], "area_code": m["_key"][0], "name": m["name"],
            "id_number": m["id_number"], "sex": m["sex"], "birth_date": m["birth_date"], "relation": m["relation"],
            "labour": m["labour"], "full_civil_capacity": m["full_civil_capacity"], "in_school": m["in_school"],
            "health": m["health"], "disability": m["disability"], "active": True,
        }
        for m in roster.members
    ]
    ev_rows = [
        {
            "id": uuid.uuid4(), "household_id": ids[k], "area_code": k[0], "kind": "import", "from_status": None,
            "to_status": rules.H.registered, "occurred_on": today, "actor_id": principal.user_id,
            "actor_name": principal.username, "actor_role": principal.role.value, "notice_start": None,
            "notice_end": None, "reason": None, "year": h["year_identified"],
            "details": {"rows": roster.member_rows[k]},
        }
        for k, h in roster.households.items()
    ]
    for table, batch in ((Household, hh_rows), (Member, m_rows), (HouseholdEvent, ev_rows)):
        for i in range(0, len(batch), 5000):
            await session.execute(insert(table), batch[i:i + 5000])
    await audit.record(
        session, principal, action="household.import", entity="household", entity_id="import",
        area_code=principal.area_code if not principal.is_system else prefix_of(hh_rows[0]["area_code"]).ljust(12, "0"),
        after={"households": len(hh_rows), "members": len(m_rows)},
    )
    return ImportResult(households=len(hh_rows), members=len(m_rows))


def _yes(v: bool) -> str:
    return "是" if v else "否"


# Text that a spreadsheet would run as a formula is quoted (CSV/formula injection).
_FORMULA_START = frozenset(("=", "+", "-", "@", "\t", "\r"))


def roster_values(h: Household, m: Member, role: Role) -> list[Any]:
    """One exported row in the import layout (so an export re-imports), the ID shown per role. Runs once per
    exported member (a province: millions), hence the inlined quoting."""
    return [("'" + v) if isinstance(v, str) and v[:1] in _FORMULA_START else v for v in _raw_values(h, m, role)]


def _raw_values(h: Household, m: Member, role: Role) -> list[Any]:
    return [
        h.household_no, h.area_code, h.address, rules.CATEGORIES.get(h.category, h.category),
        rules.CAUSES.get(h.main_cause, h.main_cause), "、".join(rules.CAUSES.get(c, c) for c in h.secondary_causes),
        str(h.income_per_capita), _yes(h.family_planning), _yes(h.veteran), h.year_identified or "",
        m.name, rules.shown_id(m.id_number, role), m.relation, rules.LABOUR.get(m.labour, m.labour),
        _yes(m.full_civil_capacity), _yes(m.in_school), m.health, m.disability or "", h.status,
    ]


EXPORT_HEADERS = [*HEADERS, "状态"]


async def roster_csv(batches: AsyncIterator[list[tuple[Any, Any]]], role: Role) -> AsyncIterator[bytes]:
    """The roster as UTF-8 CSV (with a BOM, so Excel opens it), one chunk per batch of rows as they are read."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    w.writerow(EXPORT_HEADERS)
    async for rows in batches:
        for h, m in rows:
            w.writerow(roster_values(h, m, role))
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


async def roster_xlsx(batches: AsyncIterator[list[tuple[Any, Any]]], role: Role) -> str:
    """The roster as an .xlsx file on disk (the caller streams then deletes it). A write-only workbook, fed a
    batch at a time and saved off the event loop: memory stays flat and other requests keep being served."""
    wb, ws = xlsx.sheet("贫困户台账")
    ws.append(EXPORT_HEADERS)

    def add(rows: list[tuple[Any, Any]]) -> None:
        for h, m in rows:
            ws.append(roster_values(h, m, role))

    async for rows in batches:
        await asyncio.to_thread(add, rows)
    return await asyncio.to_thread(xlsx.to_file, wb)
