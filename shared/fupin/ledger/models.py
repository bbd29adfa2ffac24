"""Double-entry ledger. An account holds money: balance = Σdebit − Σcredit, so moving money from A
to B credits A and debits B. Lines are append-only; corrections are reversing entries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, UUIDPk


class LedgerAccount(UUIDPk, Base):
    __tablename__ = "ledger_account"
    __table_args__ = (CheckConstraint("allow_negative OR balance >= 0", name="fund_not_negative"),)

    # e.g. "township_finance:520123100000:subsidy": one account per holder and purpose
    code: Mapped[str] = mapped_column(String(120), unique=True)
    holder_kind: Mapped[str] = mapped_column(String(32))  # finance_bureau, township_finance, credit_coop, household, enterprise, operator, project, implementer, source
    holder_ref: Mapped[str] = mapped_column(String(64))  # area code, household id, pool id …
    purpose: Mapped[str] = mapped_column(String(32))  # subsidy, dividend, project, share …
    name: Mapped[str] = mapped_column(String(200), default="")
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    # Budget sources (the county's appropriation) may go negative; fund accounts may not.
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class JournalEntry(UUIDPk, Base):
    __tablename__ = "journal_entry"

    kind: Mapped[str] = mapped_column(String(48), index=True)  # subsidy.settle, dividend.pay, project.disburse, reversal …
    # Natural key of the business event: one posting per reference, forever.
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    effective_on: Mapped[date] = mapped_column(Date, index=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    # The smallest area holding all its lines' accounts (`fupin_common_area`): row-level security.
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class JournalLine(Base):
    __tablename__ = "journal_line"
    __table_args__ = (
        CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)", name="one_side_positive"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("ledger_account.id"), index=True)
    debit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    credit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    # The account's area, written by `fupin_ledger_post_lines`: row-level security without a join.
    area_code: Mapped[str] = mapped_column(String(12), index=True)
