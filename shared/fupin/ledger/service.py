"""Posting money; the only module that writes ledger tables. Every entry balances: lines go in through
`fupin_ledger_post_lines` (migration p0100), which inserts them, refuses any entry whose new lines do not
balance and moves the account balances, all in one statement — so all lines of one entry go in one
call. Nothing is ever updated or deleted — a correction is `reverse`. Bulk postings (a quarter's
subsidies) hand the ledger a SELECT of their accounts, entries or lines (`open_accounts_from`,
`add_entries_from`, `post_lines_from`): one statement each, whatever the number of rows; many small
entries computed in Python go in through `post_many` and many accounts through `ensure_accounts`, a
fixed number of statements each. Account codes are built here only (`account_code`, `account_code_sql`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.errors import Conflict, RuleViolation, not_found
from fupin.ledger.models import JournalEntry, JournalLine, LedgerAccount
from fupin.money import FEN

ZERO = Decimal("0")


@dataclass(frozen=True)
class Line:
    account_id: uuid.UUID
    debit: Decimal = ZERO
    credit: Decimal = ZERO


def account_code(holder_kind: str, holder_ref: str, purpose: str) -> str:
    return f"{holder_kind}:{holder_ref}:{purpose}"


def account_code_sql(holder_kind: str, holder_ref: str, purpose: str) -> str:
    """`account_code` as a SQL expression over SQL expressions (a literal like `'household'` or a column),
    for the set-based postings that name their accounts in a SELECT: codes are spelled here only."""
    return f"({holder_kind} || ':' || {holder_ref} || ':' || {purpose})"


@dataclass(frozen=True)
class AccountSpec:
    """An account to open if missing: one per holder and purpose, its code from `account_code`."""

    holder_kind: str
    holder_ref: str
    purpose: str
    area_code: str
    name: str = ""
    allow_negative: bool = False

    @property
    def code(self) -> str:
        return account_code(self.holder_kind, self.holder_ref, self.purpose)


async def ensure_accounts(
    session: AsyncSession, specs: Sequence[AccountSpec], *, lock: bool = False
) -> dict[str, LedgerAccount]:
    """Open the accounts that do not exist yet (one INSERT for all) and return every one by code, with its
    current balance; `lock` takes their rows FOR UPDATE, in code order, for a caller that posts from the
    balances it read."""
    if not specs:
        return {}
    codes = [sp.code for sp in specs]
    await session.execute(_OPEN_ARRAYS, {
        "codes": codes, "kinds": [sp.holder_kind for sp in specs], "refs": [sp.holder_ref for sp in specs],
        "purposes": [sp.purpose for sp in specs], "names": [sp.name or sp.code for sp in specs],
        "areas": [sp.area_code for sp in specs], "negative": [sp.allow_negative for sp in specs],
    })
    stmt = select(LedgerAccount).where(LedgerAccount.code.in_(set(codes))).order_by(LedgerAccount.code)
    if lock:
        stmt = stmt.with_for_update()
    rows = (await session.scalars(stmt.execution_options(populate_existing=True))).all()
    found = {a.code: a for a in rows}
    assert set(codes) <= set(found), "an account outside the caller's scope"
    return found


_OPEN_ARRAYS = text(
    "INSERT INTO ledger_account (id, code, holder_kind, holder_ref, purpose, name, area_code, allow_negative, balance) "
    "SELECT gen_random_uuid(), n.code, n.kind, n.ref, n.purpose, n.name, n.area, n.negative, 0 "
    "FROM unnest(CAST(:codes AS text[]), CAST(:kinds AS text[]), CAST(:refs AS text[]), CAST(:purposes AS text[]), "
    "            CAST(:names AS text[]), CAST(:areas AS text[]), CAST(:negative AS boolean[])) "
    "     AS n(code, kind, ref, purpose, name, area, negative) "
    "ON CONFLICT (code) DO NOTHING"
)


async def ensure_account(
    session: AsyncSession,
    *,
    holder_kind: str,
    holder_ref: str,
    purpose: str,
    area_code: str,
    name: str = "",
    allow_negative: bool = False,
) -> LedgerAccount:
    spec = AccountSpec(holder_kind, holder_ref, purpose, area_code, name, allow_negative)
    return (await ensure_accounts(session, [spec]))[spec.code]


async def post(
    session: AsyncSession,
    *,
    kind: str,
    reference: str,
    effective_on: date,
    lines: Sequence[Line],
    description: str = "",
    created_by: str = "system",
    run_id: uuid.UUID | None = None,
    reverses_id: uuid.UUID | None = None,
) -> JournalEntry:
    """Write one balanced entry. A reference already posted is refused (409): money moves once per event."""
    _check_lines(lines)
    exists = await session.scalar(select(JournalEntry.id).where(JournalEntry.reference == reference))
    if exists is not None:
        raise Conflict("ledger.duplicate_reference", f"{reference} was already posted", f"{reference} 已记账")
    # The entry's area (row-level security) is the smallest area holding all its accounts, computed in
    # the insert itself; an account outside the caller's scope is not seen here and the lines are refused.
    area = (
        select(func.fupin_common_area(func.array_agg(cast(LedgerAccount.area_code, Text))))
        .where(LedgerAccount.id.in_({ln.account_id for ln in lines}))
        .scalar_subquery()
    )
    entry = await session.scalar(insert(JournalEntry).values(
        id=uuid.uuid4(), kind=kind, reference=reference, effective_on=effective_on, description=description,
        created_by=created_by, run_id=run_id, reverses_id=reverses_id, area_code=area,
    ).returning(JournalEntry))
    assert entry is not None
    await session.execute(_POST_ARRAYS, {
        "e": [entry.id] * len(lines), "a": [ln.account_id for ln in lines], "d": [ln.debit for ln in lines],
        "c": [ln.credit for ln in lines],
    })
    return entry


def _check_lines(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise RuleViolation("ledger.too_few_lines", "an entry needs at least two lines", "分录至少需要两行")
    for line in lines:
        for v in (line.debit, line.credit):
            if v < 0 or v != v.quantize(FEN):
                raise RuleViolation("ledger.bad_amount", "amounts are non-negative whole fen", "金额必须为非负且精确到分")
    debits = sum((ln.debit for ln in lines), ZERO)
    credits = sum((ln.credit for ln in lines), ZERO)
    if debits != credits or debits == 0:
        raise RuleViolation(
            "ledger.unbalanced", f"debits {debits} ≠ credits {credits}", f"借方 {debits} 与贷方 {credits} 不平"
        )


@dataclass(frozen=True)
class Posting:
    """One entry of `post_many`: the arguments of `post`."""

    kind: str
    reference: str
    effective_on: date
    lines: Sequence[Line]
    description: str = ""
    created_by: str = "system"
    run_id: uuid.UUID | None = None


async def post_many(session: AsyncSession, postings: Sequence[Posting]) -> list[uuid.UUID]:
    """Write many balanced entries in three statements whatever their number (`post`'s checks for each):
    the references already posted (409), every header in one INSERT (each with the smallest area holding
    its accounts), every line in one `fupin_ledger_post_lines` call. Returns the entries' ids, in order."""
    if not postings:
        return []
    for p in postings:
        _check_lines(p.lines)
    refs = [p.reference for p in postings]
    if len(set(refs)) != len(refs):
        raise Conflict("ledger.duplicate_reference", "a reference appears twice in one posting", "同一批记账中凭证号重复")
    taken = (await session.scalars(select(JournalEntry.reference).where(JournalEntry.reference.in_(refs)))).all()
    if taken:
        raise Conflict("ledger.duplicate_reference", f"{taken[0]} was already posted", f"{taken[0]} 已记账")
    ids = [uuid.uuid4() for _ in postings]
    lines = [(eid, ln) for eid, p in zip(ids, postings, strict=True) for ln in p.lines]
    arrays = {"e": [e for e, _ in lines], "a": [ln.account_id for _, ln in lines],
              "d": [ln.debit for _, ln in lines], "c": [ln.credit for _, ln in lines]}
    await session.execute(_ENTRIES_ARRAYS, {
        "e": arrays["e"], "a": arrays["a"], "ids": ids, "kinds": [p.kind for p in postings], "refs": refs,
        "days": [p.effective_on for p in postings], "descs": [p.description for p in postings],
        "runs": [p.run_id for p in postings], "bys": [p.created_by for p in postings],
    })
    await session.execute(_POST_ARRAYS, arrays)
    return ids


# An account the caller's scope cannot see gives no area here and the lines' call refuses it.
_ENTRIES_ARRAYS = text(
    "INSERT INTO journal_entry (id, kind, reference, effective_on, description, run_id, created_by, area_code) "
    "SELECT h.id, h.kind, h.reference, h.effective_on, h.description, h.run_id, h.created_by, "
    "       (SELECT fupin_common_area(array_agg(CAST(acc.area_code AS text))) "
    "        FROM unnest(CAST(:e AS uuid[]), CAST(:a AS uuid[])) AS l(entry_id, account_id) "
    "        JOIN ledger_account acc ON acc.id = l.account_id WHERE l.entry_id = h.id) "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:refs AS text[]), CAST(:days AS date[]), "
    "            CAST(:descs AS text[]), CAST(:runs AS uuid[]), CAST(:bys AS text[])) "
    "     AS h(id, kind, reference, effective_on, description, run_id, created_by)"
)

_POST_ARRAYS = text(
    "SELECT fupin_ledger_post_lines(CAST(:e AS uuid[]), CAST(:a AS uuid[]), CAST(:d AS numeric[]), CAST(:c AS numeric[]))"
)


async def post_lines_from(session: AsyncSession, lines_sql: str, params: dict[str, Any]) -> int:
    """Post every line `lines_sql` selects (columns entry_id, account_id, debit, credit), in one statement;
    each entry's lines must all be among them and balance. Returns the number of lines."""
    n = await session.scalar(text(
        "SELECT fupin_ledger_post_lines(array_agg(l.entry_id), array_agg(l.account_id), array_agg(l.debit), "
        f"array_agg(l.credit)) FROM ({lines_sql}) l"
    ), params)
    return int(n or 0)


async def add_entries_from(session: AsyncSession, entries_sql: str, params: dict[str, Any], *, area_code: str) -> int:
    """Insert the entry headers `entries_sql` selects (id, kind, reference, effective_on, description, run_id,
    created_by, and `:entries_area` last); their lines follow through `post_lines_from`. A reference already
    posted fails the statement. `area_code` (bound as `entries_area`) is an area holding every account of
    these entries, e.g. the run's county: the entries' row-level security."""
    result = await session.execute(text(
        "INSERT INTO journal_entry (id, kind, reference, effective_on, description, run_id, created_by, area_code) "
        f"{entries_sql}"
    ), {**params, "entries_area": area_code})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def open_accounts_from(session: AsyncSession, accounts_sql: str, params: dict[str, Any]) -> int:
    """Open the accounts `accounts_sql` selects (code, holder_kind, holder_ref, purpose, name, area_code) that do
    not exist yet, with a zero balance; existing ones are left as they are. Returns how many were opened."""
    result = await session.execute(text(
        "INSERT INTO ledger_account (id, code, holder_kind, holder_ref, purpose, name, area_code, allow_negative, "
        "balance) "
        "SELECT gen_random_uuid(), n.code, n.holder_kind, n.holder_ref, n.purpose, n.name, n.area_code, false, 0 "
        f"FROM ({accounts_sql}) n WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.code = n.code) "
        "ON CONFLICT (code) DO NOTHING"
    ), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def transfer(
    session: AsyncSession,
    *,
    source: LedgerAccount,
    target: LedgerAccount,
    amount: Decimal,
    kind: str,
    reference: str,
    effective_on: date,
    description: str = "",
    created_by: str = "system",
    run_id: uuid.UUID | None = None,
) -> JournalEntry:
    return await post(
        session, kind=kind, reference=reference, effective_on=effective_on, description=description,
        created_by=created_by, run_id=run_id,
        lines=[Line(target.id, debit=amount), Line(source.id, credit=amount)],
    )


async def reverse(
    session: AsyncSession, *, entry_id: uuid.UUID, effective_on: date, reason: str, created_by: str = "system"
) -> JournalEntry:
    original = await session.get(JournalEntry, entry_id)
    if original is None:
        raise not_found("journal_entry")
    lines = (await session.scalars(select(JournalLine).where(JournalLine.entry_id == entry_id))).all()
    return await post(
        session, kind="reversal", reference=f"reversal:{original.reference}", effective_on=effective_on,
        description=reason, created_by=created_by, reverses_id=original.id,
        lines=[Line(ln.account_id, debit=ln.credit, credit=ln.debit) for ln in lines],
    )


@dataclass(frozen=True)
class LedgerCheck:
    balanced: bool
    total_debit: Decimal
    total_credit: Decimal
    unbalanced_entries: int
    accounts_mismatched: int
    negative_funds: int

    @property
    def ok(self) -> bool:
        return self.balanced and not self.unbalanced_entries and not self.accounts_mismatched and not self.negative_funds


async def check(session: AsyncSession) -> LedgerCheck:
    """Σdebit = Σcredit globally and per entry; every stored balance equals its lines; no fund below zero."""
    totals = (await session.execute(select(func.coalesce(func.sum(JournalLine.debit), 0),
                                           func.coalesce(func.sum(JournalLine.credit), 0)))).one()
    per_entry = (
        select(JournalLine.entry_id)
        .group_by(JournalLine.entry_id)
        .having(func.sum(JournalLine.debit) != func.sum(JournalLine.credit))
        .subquery()
    )
    unbalanced = await session.scalar(select(func.count()).select_from(per_entry))
    sums = (
        select(JournalLine.account_id, func.sum(JournalLine.debit - JournalLine.credit).label("net"))
        .group_by(JournalLine.account_id)
        .subquery()
    )
    mismatched = await session.scalar(
        select(func.count())
        .select_from(LedgerAccount)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != func.coalesce(sums.c.net, 0))
    )
    negative = await session.scalar(
        select(func.count()).select_from(LedgerAccount).where(~LedgerAccount.allow_negative, LedgerAccount.balance < 0)
    )
    return LedgerCheck(
        balanced=totals[0] == totals[1], total_debit=Decimal(totals[0]), total_credit=Decimal(totals[1]),
        unbalanced_entries=int(unbalanced or 0), accounts_mismatched=int(mismatched or 0),
        negative_funds=int(negative or 0),
    )
