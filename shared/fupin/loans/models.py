"""Loans as the bank books them, and their repayments. Area-owned: `area_code` is the borrower's village
(or the enterprise's township). The application workflow lives beside these in the loans domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Rate, Timestamps, UUIDPk


class Loan(UUIDPk, Timestamps, Base):
    __tablename__ = "loan"
    __table_args__ = (
        CheckConstraint("principal > 0", name="principal_positive"),
        CheckConstraint("outstanding >= 0 AND outstanding <= principal", name="outstanding_range"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    township_code: Mapped[str] = mapped_column(String(12), index=True)
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("household.id"), index=True
    )
    enterprise_name: Mapped[str | None] = mapped_column(String(200))  # enterprise loans (第十三条)
    product: Mapped[str] = mapped_column(String(32))  # household | tehuidai | enterprise
    purpose: Mapped[str] = mapped_column(String(32))  # tobacco, sugar, mulberry, livestock, vegetables, other_farming, non_productive
    productive: Mapped[bool] = mapped_column(default=True)
    principal: Mapped[Decimal] = mapped_column(Money)
    outstanding: Mapped[Decimal] = mapped_column(Money)
    interest_rate: Mapped[Decimal] = mapped_column(Rate)  # the coop's own rate, annual
    disbursed_on: Mapped[date] = mapped_column(Date, index=True)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    repaid_on: Mapped[date | None] = mapped_column(Date)  # date the balance reached zero
    status: Mapped[str] = mapped_column(String(16), index=True)  # current | repaid_on_time | repaid_late | overdue
    coop_code: Mapped[str] = mapped_column(String(32))  # lending institution (credit coop) id
    external_id: Mapped[str | None] = mapped_column(String(64))
    application_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))


class LoanRepayment(UUIDPk, Base):
    __tablename__ = "loan_repayment"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_nonzero"),)

    loan_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("loan.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)  # negative only for a reversal of an earlier repayment
    paid_on: Mapped[date] = mapped_column(Date, index=True)
    source_event_id: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
