"""A large synthetic province, written with COPY through the owner's connection.

Everything is derived from one `random.Random` seeded by `seed` and the province, so the same arguments
build the same rows.
Region codes use prefectures 90-99 (the default province 53 has none; a few provinces use 90 for directly
administered counties), so every area code and every ID number (region + birth date + sequence + valid
check character) is recognisably synthetic.

Rows are generated in chunks and streamed into `copy_records_to_table`, so memory stays flat. A province of
500,000 households (1.65 M members) and 1,000,000 loans (824 k repayments) took 174 s on two shared cores,
most of it Python generating rows (deploy/SCALING.md).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import township_of
from fupin.areas.scope import bind, within_sql
from fupin.errors import Conflict
from fupin.households.rules import HouseholdStatus
from fupin.seeding import idcard, names

CHUNK = 20_000
HOUSEHOLD_COLUMNS = (
    "id", "area_code", "household_no", "head_name", "address", "category", "main_cause", "secondary_causes",
    "income_per_capita", "family_planning", "veteran", "status", "year_identified", "year_exited",
    "created_at", "updated_at",
)
MEMBER_COLUMNS = (
    "id", "household_id", "area_code", "name", "id_number", "sex", "birth_date", "relation", "labour",
    "full_civil_capacity", "in_school", "health", "disability", "active", "created_at", "updated_at",
)
LOAN_COLUMNS = (
    "id", "area_code", "township_code", "household_id", "enterprise_name", "product", "purpose", "productive",
    "principal", "outstanding", "interest_rate", "disbursed_on", "due_on", "repaid_on", "status", "coop_code",
    "external_id", "application_id", "created_at", "updated_at",
)
REPAYMENT_COLUMNS = ("id", "loan_id", "area_code", "amount", "paid_on", "source_event_id", "recorded_at")

CAUSES = ("因病", "因残", "因学", "缺技术", "缺劳力", "缺资金", "因灾", "交通条件落后", "自身发展动力不足")
CAUSE_WEIGHTS = (24, 12, 8, 18, 12, 14, 4, 4, 4)
PURPOSES = ("tobacco", "sugar", "mulberry", "livestock", "vegetables", "other_farming", "non_productive")
PURPOSE_WEIGHTS = (12, 10, 8, 30, 20, 15, 5)
RATES = (Decimal("0.043500"), Decimal("0.047500"), Decimal("0.049000"))
SIZE_WEIGHTS = (10, 20, 28, 22, 12, 8)  # members per household, 1..6
# Loan status mix: current, repaid on time, repaid late, overdue.
STATUS_WEIGHTS = (55, 30, 8, 7)
STATUSES = ("current", "repaid_on_time", "repaid_late", "overdue")
SIZES = (1, 2, 3, 4, 5, 6)
LABOUR = ("ordinary", "skilled", "weak", "lost")
CATEGORIES = ("general", "dibao", "tekun")
# (was "returned", a status the workflow does not know: the seed made households no rule could move)
HOUSEHOLD_STATUSES = (HouseholdStatus.registered, HouseholdStatus.exited, HouseholdStatus.returned_to_poverty)


STATUS_CUM = list(itertools.accumulate(float(w) for w in STATUS_WEIGHTS))
PURPOSE_CUM = list(itertools.accumulate(float(w) for w in PURPOSE_WEIGHTS))
CAUSE_CUM = list(itertools.accumulate(float(w) for w in CAUSE_WEIGHTS))
SIZE_CUM = list(itertools.accumulate(float(w) for w in SIZE_WEIGHTS))
LABOUR_CUM = list(itertools.accumulate(float(w) for w in (60, 15, 15, 10)))
CATEGORY_CUM = list(itertools.accumulate(float(w) for w in (70, 24, 6)))
HOUSEHOLD_STATUS_CUM = list(itertools.accumulate(float(w) for w in (30, 68, 2)))


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass
class Layout:
    """The area tree to write and, in order, the villages households are spread over."""

    areas: list[Area] = field(default_factory=list)
    villages: list[Area] = field(default_factory=list)


@dataclass
class SeedCounts:
    areas: int = 0
    households: int = 0
    members: int = 0
    loans: int = 0
    repayments: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.areas:,} areas, {self.households:,} households, {self.members:,} members, "
            f"{self.loans:,} loans, {self.repayments:,} repayments in {self.seconds:.1f} s"
        )


def _add_townships(layout: Layout, rng: random.Random, county: str, townships: int, villages_per_township: int) -> None:
    for t in range(townships):
        tcode = f"{county[:6]}{100 + t:03d}000"
        layout.areas.append(Area(tcode, names.place(rng, "镇" if t % 3 == 0 else "乡"), "township", county))
        for v in range(villages_per_township):
            village = Area(f"{tcode[:9]}{1 + v:03d}", names.place(rng, "村"), "village", tcode)
            layout.areas.append(village)
            layout.villages.append(village)


def county_layout(
    rng: random.Random, *, county: str, name: str, townships: int, villages_per_township: int
) -> Layout:
    if not 1 <= townships <= 899 or not 1 <= villages_per_township <= 999:
        raise ValueError("1-899 townships per county and 1-999 villages per township")
    layout = Layout(areas=[Area(county, name, "county", county[:4] + "00000000")])
    _add_townships(layout, rng, county, townships, villages_per_township)
    return layout


def province_layout(
    rng: random.Random, *, province: str, townships: int, villages_per_township: int, townships_per_county: int = 20
) -> Layout:
    """Province `province` (2 digits), prefectures 90-99, counties of `townships_per_county` townships."""
    counties = math.ceil(townships / townships_per_county)
    per_city = 99
    if counties > 10 * per_city:
        raise ValueError(f"at most {10 * per_city * townships_per_county} townships")
    layout = Layout(areas=[Area(f"{province}0000000000", "合成省", "province", None)])
    left = townships
    for c in range(counties):
        city = f"{province}{90 + c // per_city:02d}00000000"
        if c % per_city == 0:
            layout.areas.append(Area(city, f"合成{c // per_city + 1}州", "city", layout.areas[0].code))
        county = f"{city[:4]}{1 + c % per_city:02d}000000"
        layout.areas.append(Area(county, f"合成{c + 1}县", "county", city))
        n = min(townships_per_county, left)
        left -= n
        _add_townships(layout, rng, county, n, villages_per_township)
    return layout


def _uuid(base: int, i: int) -> uuid.UUID:
    return uuid.UUID(int=(base << 64) | i)


async def _copy(session: AsyncSession, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if "area_code" in columns and "county" not in columns and _carries_county(table):
        at = list(columns).index("area_code")
        columns, rows = [*columns, "county"], [(*r, r[at][:6]) for r in rows]
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


def _carries_county(table: str) -> bool:
    """COPY bypasses the ORM's default: the county column (fupin.base) is filled here."""
    from fupin.models import metadata

    return "county" in metadata.tables[table].c


class _Ids:
    """Unique ID numbers per region: a sequence counter per (region, birth date, sex). The weighted sum of
    the first 14 digits is cached per region and date, so each number costs three multiplications."""

    def __init__(self) -> None:
        self.next: dict[tuple[str, int, str], int] = {}
        self.prefix: dict[tuple[str, int], tuple[str, int]] = {}

    def issue(self, region: str, birth: date, sex: str) -> str:
        day = birth.toordinal()
        key = (region, day, sex)
        n = self.next.get(key, 0)
        if n >= 499:
            raise ValueError("ID sequence space exhausted for one birth date")
        self.next[key] = n + 1
        cached = self.prefix.get((region, day))
        if cached is None:
            head = f"{region}{birth:%Y%m%d}"
            cached = (head, sum(int(c) * w for c, w in zip(head, idcard.WEIGHTS, strict=False)))
            self.prefix[(region, day)] = cached
        head, partial = cached
        seq = 2 * n + (1 if sex == "M" else 2)
        a, b, c = seq // 100, seq // 10 % 10, seq % 10
        return f"{head}{seq:03d}{idcard.CHECK[(partial + 8 * a + 4 * b + 2 * c) % 11]}"


_YEAR_START = {y: date(y, 1, 1).toordinal() for y in range(1940, 2011)}


def _pick(rng: random.Random, items: Sequence[Any], cum: Sequence[float]) -> Any:
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def _birth(rng: random.Random, year_lo: int, year_hi: int) -> date:
    year = max(1940, min(2010, rng.randint(year_lo, year_hi)))
    return date.fromordinal(_YEAR_START[year] + int(rng.random() * 365))


def _members(
    rng: random.Random, ids: _Ids, region: str, size: int, now: datetime, hid: uuid.UUID, area: str, base: int, seq: int,
    as_of: date,
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    head_sex = "M" if rng.random() < 0.8 else "F"
    head_birth = _birth(rng, 1945, 1990)
    surname = rng.choice(names.SURNAMES)
    plan: list[tuple[str, str, date, str | None]] = [("户主", head_sex, head_birth, surname)]
    if size >= 2:
        plan.append(("配偶", "F" if head_sex == "M" else "M", _birth(rng, head_birth.year - 4, head_birth.year + 4), None))
    for _ in range(size - len(plan)):
        if rng.random() < 0.85:
            plan.append(("子女", rng.choice("MF"), _birth(rng, head_birth.year + 20, head_birth.year + 36), surname))
        else:
            plan.append(("父母", rng.choice("MF"), _birth(rng, head_birth.year - 30, head_birth.year - 22), None))
    for k, (relation, sex, birth, family) in enumerate(plan):
        age = as_of.year - birth.year
        if age < 16:
            labour, in_school = "none", age >= 6
        elif age >= 65:
            labour, in_school = rng.choice(("weak", "lost", "none")), False
        else:
            labour, in_school = _pick(rng, LABOUR, LABOUR_CUM), age < 22
        disabled = rng.random() < 0.06
        health = "健康" if rng.random() < 0.8 else rng.choice(("长期慢性病", "患有大病", "残疾"))
        rows.append((
            _uuid(base, seq + k), hid, area, names.person(rng, sex, family), ids.issue(region, birth, sex), sex, birth,
            relation, labour, age >= 18 and not disabled, in_school, health,
            rng.choice(("肢体", "视力", "听力", "智力")) if disabled else None, True, now, now,
        ))
    return rows


async def write_areas(session: AsyncSession, layout: Layout, households: int) -> int:
    per_village = max(1, households // max(1, len(layout.villages)))
    now = datetime.now(UTC)
    rows = [
        # Registered rural population: roughly eight times the registered poor in a village.
        (a.code, a.name, a.level, a.parent_code, per_village * 3 * 8 if a.level == "village" else 0, now)
        for a in layout.areas
    ]
    await _copy(session, "area", ("code", "name", "level", "parent_code", "population", "created_at"), rows)
    return len(rows)


@dataclass(frozen=True)
class HouseholdIndex:
    """Household i lives in village `villages[i * len(villages) // count]`; its id is derived from i."""

    base: int
    count: int
    villages: list[Area]

    def village(self, i: int) -> Area:
        return self.villages[i * len(self.villages) // self.count]

    def id(self, i: int) -> uuid.UUID:
        return _uuid(self.base, i)

    def for_loan(self, j: int) -> int:
        """Loans spread over all villages: a stride coprime to the household count visits each one."""
        stride = next(p for p in (7919, 7927, 7933) if math.gcd(p, self.count) == 1)
        return (j * stride) % self.count


async def write_households(
    session: AsyncSession, rng: random.Random, layout: Layout, count: int, as_of: date
) -> tuple[HouseholdIndex, int]:
    """Households with their members; returns the index for loans and the number of members."""
    index = HouseholdIndex(rng.getrandbits(63), count, layout.villages)
    member_base = rng.getrandbits(63)
    ids = _Ids()
    now = datetime.now(UTC)
    members_total = 0
    for start in range(0, count, CHUNK):
        households: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        for i in range(start, min(count, start + CHUNK)):
            village = index.village(i)
            hid = index.id(i)
            size = _pick(rng, SIZES, SIZE_CUM)
            rows = _members(rng, ids, village.code[:6], size, now, hid, village.code, member_base, members_total + len(members), as_of)
            members.extend(rows)
            category = _pick(rng, CATEGORIES, CATEGORY_CUM)
            status = _pick(rng, HOUSEHOLD_STATUSES, HOUSEHOLD_STATUS_CUM)
            identified = rng.choice((2014, 2015, 2016))
            main = _pick(rng, CAUSES, CAUSE_CUM)
            households.append((
                hid, village.code, f"{village.code[6:]}-{i:07d}", rows[0][3], f"{village.name}{1 + i % 9}组",
                category, main, [rng.choice(CAUSES)] if rng.random() < 0.3 else [],
                Decimal(rng.randrange(1800, 9000)), rng.random() < 0.1, rng.random() < 0.03, status, identified,
                rng.randint(identified + 1, 2020) if status != "registered" else None, now, now,
            ))
        await _copy(session, "household", HOUSEHOLD_COLUMNS, households)
        await _copy(session, "household_member", MEMBER_COLUMNS, members)
        members_total += len(members)
    return index, members_total


def _loan_rows(
    rng: random.Random, homes: HouseholdIndex, as_of: date, start: int, stop: int, loan_base: int,
    pay_base: int, pay_seq: int, now: datetime,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    loans: list[tuple[Any, ...]] = []
    pays: list[tuple[Any, ...]] = []
    today = as_of.toordinal()
    for j in range(start, stop):
        h = homes.for_loan(j)
        village = homes.village(h).code
        lid = _uuid(loan_base, j)
        yuan = rng.randrange(5, 51) * 1000
        principal = Decimal(yuan)
        term = rng.choice((365, 730, 1095))
        status = _pick(rng, STATUSES, STATUS_CUM)
        payments: list[tuple[int, int]] = []  # (yuan, ordinal day)
        repaid: int | None = None
        if status == "current":
            disbursed = today - rng.randrange(1, term - 1)
            if rng.random() < 0.4:
                payments.append((yuan * rng.randrange(1, 6) // 10, rng.randint(disbursed + 1, today)))
        elif status == "overdue":
            due = today - rng.randrange(1, 400)
            disbursed = due - term
            if rng.random() < 0.5:
                payments.append((yuan * rng.randrange(1, 8) // 10, rng.randint(disbursed + 1, due)))
        else:
            due = today - rng.randrange(61, 800)
            disbursed = due - term
            repaid = due - rng.randrange(0, 60) if status == "repaid_on_time" else due + rng.randrange(1, 60)
            if rng.random() < 0.5:
                half = yuan // 2
                payments += [(half, rng.randint(disbursed + 1, repaid - 1)), (yuan - half, repaid)]
            else:
                payments.append((yuan, repaid))
        due_on = disbursed + term
        paid = sum(p for p, _ in payments)
        for amount, day in payments:
            k = pay_seq + len(pays)
            pays.append((_uuid(pay_base, k), lid, village, Decimal(amount), date.fromordinal(day), f"SYN-R{k:09d}", now))
        purpose = _pick(rng, PURPOSES, PURPOSE_CUM)
        township = township_of(village)
        loans.append((
            lid, village, township, homes.id(h), None, "household", purpose, purpose != "non_productive",
            principal, Decimal(yuan - paid), rng.choice(RATES), date.fromordinal(disbursed), date.fromordinal(due_on),
            date.fromordinal(repaid) if repaid is not None else None, status, coop_code(township),
            f"SYN-L{j:09d}", None, now, now,
        ))
    return loans, pays


async def write_loans(
    session: AsyncSession, rng: random.Random, homes: HouseholdIndex, count: int, as_of: date
) -> tuple[int, int]:
    """Household loans in every status with repayments that add up; returns (loans, repayments)."""
    loan_base, pay_base = rng.getrandbits(63), rng.getrandbits(63)
    now = datetime.now(UTC)
    repayments = 0
    for start in range(0, count, CHUNK):
        loans, pays = _loan_rows(
            rng, homes, as_of, start, min(count, start + CHUNK), loan_base, pay_base, repayments, now
        )
        await _copy(session, "loan", LOAN_COLUMNS, loans)
        await _copy(session, "loan_repayment", REPAYMENT_COLUMNS, pays)
        repayments += len(pays)
    return count, repayments


async def _refuse_if_present(session: AsyncSession, prefix: str) -> None:
    found = await session.scalar(text(f"SELECT count(*) FROM area WHERE {within_sql('code', 'p')}"),
                                  bind("p", prefix.ljust(12, "0")))
    if found:
        raise Conflict("seed.areas_exist", f"areas under {prefix} already exist", f"区划 {prefix} 下已有数据")


async def _skip_fk_triggers(session: AsyncSession) -> None:
    """Rows are foreign-key consistent by construction, so skip the per-row RI checks for this transaction
    (`session_replication_role = replica`, superuser only; otherwise the checks simply run)."""
    try:
        async with session.begin_nested():
            await session.execute(text("SET LOCAL session_replication_role = replica"))
    except DBAPIError:
        pass


async def seed_synthetic(
    session: AsyncSession,
    *,
    townships: int,
    households: int,
    loans: int,
    villages_per_township: int = 10,
    province: str = "53",
    seed: int = 20140101,
    as_of: date | None = None,
) -> SeedCounts:
    """Build a synthetic province in the caller's (owner) transaction. Refuses if the province has areas."""
    started = time.perf_counter()
    if not (len(province) == 2 and province.isdigit() and province != "00"):
        raise ValueError("province must be two digits, not 00")
    if households < 1 or loans < 0 or townships < 1:
        raise ValueError("need at least one township and one household")
    await _refuse_if_present(session, province)
    await session.execute(text("SET LOCAL synchronous_commit = off"))
    await _skip_fk_triggers(session)
    rng = random.Random(seed * 100 + int(province))  # distinct ids per province for the same seed
    as_of = as_of or datetime.now(UTC).date()
    layout = province_layout(rng, province=province, townships=townships, villages_per_township=villages_per_township)
    counts = SeedCounts(areas=await write_areas(session, layout, households))
    homes, counts.members = await write_households(session, rng, layout, households, as_of)
    counts.households = households
    counts.loans, counts.repayments = await write_loans(session, rng, homes, loans, as_of)
    counts.seconds = time.perf_counter() - started
    return counts


async def analyze(session: AsyncSession) -> None:
    for table in ("area", "household", "household_member", "loan", "loan_repayment"):
        await session.execute(text(f"ANALYZE {table}"))


def coop_code(township: str) -> str:
    """The credit coop of a synthetic township: the institution its loans name and its bank client serves."""
    return f"COOP-{township[:9]}"
