"""Tables of the repayment-rate assessment: county policies, immutable checks with the loans behind
them, next year's quota proposals and the quotas they become once confirmed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Rate, UUIDPk


class RepaymentPolicy(UUIDPk, Base):
    """A county's thresholds and quota changes from `effective_from` on (area_code is the county)."""

    __tablename__ = "repayment_policy"
    __table_args__ = (
        UniqueConstraint("area_code", "effective_from"),
        CheckConstraint(
            "penalty_threshold > 0 AND penalty_threshold <= reward_threshold AND reward_threshold <= 1",
            name="thresholds_ordered",
        ),
        CheckConstraint("quota_increase >= 0 AND quota_cut >= 0 AND quota_cut <= 1", name="changes_range"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    effective_from: Mapped[date] = mapped_column(Date)
    reward_threshold: Mapped[Decimal] = mapped_column(Rate)
    penalty_threshold: Mapped[Decimal] = mapped_column(Rate)
    quota_increase: Mapped[Decimal] = mapped_column(Rate)
    quota_cut: Mapped[Decimal] = mapped_column(Rate)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RepaymentCheck(UUIDPk, Base):
    """One township's rate for a period as known on `as_of`; never updated (append-only)."""

    __tablename__ = "repayment_check"
    __table_args__ = (
        UniqueConstraint("job_key", "area_code"),
        CheckConstraint("principal_recovered >= 0 AND principal_recovered <= principal_due", name="recovered_range"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the township
    county_code: Mapped[str] = mapped_column(String(12), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # monthly | annual | manual
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date, index=True)
    as_of: Mapped[date] = mapped_column(Date)
    principal_due: Mapped[Decimal] = mapped_column(Money)
    principal_recovered: Mapped[Decimal] = mapped_column(Money)
    rate: Mapped[Decimal | None] = mapped_column(Rate)
    band: Mapped[str] = mapped_column(String(16), index=True)
    loans_due: Mapped[int] = mapped_column(Integer)
    loans_recovered: Mapped[int] = mapped_column(Integer)
    loans_overdue: Mapped[int] = mapped_column(Integer)
    policy_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("repayment_policy.id"))
    reward_threshold: Mapped[Decimal] = mapped_column(Rate)
    penalty_threshold: Mapped[Decimal] = mapped_column(Rate)
    quota_increase: Mapped[Decimal] = mapped_column(Rate)
    quota_cut: Mapped[Decimal] = mapped_column(Rate)
    job_key: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RepaymentCheckLoan(Base):
    """Loan snapshots written by checks made before issue 13 (kept, never written any more): the loans
    behind a check are now reconstructed by `service.check_loans` from the check's dates and time."""

    __tablename__ = "repayment_check_loan"

    # No foreign keys: the rows are written by the same statement as their check (one per loan, a
    # million for a province), and per-row FK triggers cost more than the whole check. Both ends are
    # append-only or never deleted, so the references cannot dangle.
    check_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))  # the loan's village (RLS; reads go by check_id)
    principal: Mapped[Decimal] = mapped_column(Money)
    recovered: Mapped[Decimal] = mapped_column(Money)
    due_on: Mapped[date] = mapped_column(Date)
    overdue: Mapped[bool] = mapped_column(Boolean)


class QuotaProposal(UUIDPk, Base):
    """Next year's quota for a township proposed by the annual assessment; changes nothing until confirmed."""

    __tablename__ = "quota_proposal"
    __table_args__ = (UniqueConstraint("area_code", "year"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the township
    county_code: Mapped[str] = mapped_column(String(12), index=True)
    year: Mapped[int] = mapped_column(Integer)  # the year the quota is for
    check_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("repayment_check.id"))
    band: Mapped[str] = mapped_column(String(16))
    current_quota: Mapped[Decimal | None] = mapped_column(Money)
    quota_change: Mapped[Decimal] = mapped_column(Rate)  # signed fraction
    proposed_quota: Mapped[Decimal | None] = mapped_column(Money)
    working_funds_eligible: Mapped[bool] = mapped_column(Boolean)
    reward: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | confirmed
    confirmed_quota: Mapped[Decimal | None] = mapped_column(Money)
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoanQuotaConfirmed(UUIDPk, Base):
    """A township's lending quota for a year, as confirmed by the poverty office. Written only by
    `service.apply_confirmed_quota`; to be reconciled with the loans domain's `/loan-quotas` table."""

    __tablename__ = "loan_quota_confirmed"
    __table_args__ = (UniqueConstraint("area_code", "year"), CheckConstraint("amount >= 0", name="amount_nonneg"))

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    working_funds_eligible: Mapped[bool] = mapped_column(Boolean)
    reward: Mapped[bool] = mapped_column(Boolean)
    proposal_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("quota_proposal.id"))
    confirmed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
