"""Ledger reads, scoped by the account's area: balances, one account's lines, the global check."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scoped
from fupin.auth.principal import Principal
from fupin.errors import not_found
from fupin.ledger import service
from fupin.ledger.models import JournalEntry, JournalLine, LedgerAccount
from fupin.ledger.schemas import AccountDetail, AccountLine, AccountRead, LedgerCheckRead


async def list_accounts(
    session: AsyncSession, *, principal: Principal, holder_kind: str | None = None, purpose: str | None = None,
    limit: int = 100, after: str | None = None,
) -> list[LedgerAccount]:
    stmt = scoped(select(LedgerAccount), principal, LedgerAccount.area_code)
    if holder_kind:
        stmt = stmt.where(LedgerAccount.holder_kind == holder_kind)
    if purpose:
        stmt = stmt.where(LedgerAccount.purpose == purpose)
    if after:
        stmt = stmt.where(LedgerAccount.code > after)
    return list((await session.scalars(stmt.order_by(LedgerAccount.code).limit(limit))).all())


async def get_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID, limit: int = 200
) -> AccountDetail:
    account = await session.scalar(
        scoped(select(LedgerAccount).where(LedgerAccount.id == account_id), principal, LedgerAccount.area_code)
    )
    if account is None:
        raise not_found("ledger_account")
    rows = (await session.execute(
        select(JournalEntry.id, JournalEntry.kind, JournalEntry.reference, JournalEntry.effective_on,
               JournalEntry.description, JournalLine.debit, JournalLine.credit, JournalEntry.posted_at)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account_id == account.id)
        .order_by(JournalLine.id.desc())
        .limit(limit)
    )).all()
    lines = [
        AccountLine(entry_id=r[0], kind=r[1], reference=r[2], effective_on=r[3], description=r[4], debit=r[5],
                    credit=r[6], posted_at=r[7])
        for r in rows
    ]
    return AccountDetail(**AccountRead.model_validate(account).model_dump(), entries=lines)


async def check(session: AsyncSession, *, principal: Principal) -> LedgerCheckRead:
    """Global by design: the proof covers every account (only county-level roles may ask)."""
    del principal
    result = await service.check(session)
    return LedgerCheckRead(
        ok=result.ok, balanced=result.balanced, total_debit=result.total_debit, total_credit=result.total_credit,
        unbalanced_entries=result.unbalanced_entries, accounts_mismatched=result.accounts_mismatched,
        negative_funds=result.negative_funds,
    )
