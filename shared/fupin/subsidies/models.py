"""Subsidy policies per county, quarterly runs per township, and the payouts a settlement makes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Rate, UUIDPk


class SubsidyPolicy(UUIDPk, Base):
    __tablename__ = "subsidy_policy"
    __table_args__ = (UniqueConstraint("area_code", "effective_from"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    effective_from: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Rate)  # annual, e.g. 0.025800
    day_count: Mapped[str] = mapped_column(String(16), default="actual/365")
    productive_only: Mapped[bool] = mapped_column(Boolean, default=True)
    rounding: Mapped[str] = mapped_column(String(24), default="half_up_fen_per_loan")
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SubsidyRun(UUIDPk, Base):
    __tablename__ = "subsidy_run"
    __table_args__ = (UniqueConstraint("area_code", "quarter", "phase"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the township
    quarter: Mapped[str] = mapped_column(String(6))  # 2026Q3
    phase: Mapped[str] = mapped_column(String(16))  # allocation | preallocation | settlement
    # The job that settles it: its own, or (planned settlements) its county's, shared by the county's townships.
    job_key: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done
    triggered_by: Mapped[str] = mapped_column(String(64), default="cron")
    total_expected: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    total_paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    total_returned: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    total_topped_up: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    loans_paid: Mapped[int] = mapped_column(Integer, default=0)
    loans_late: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SubsidyPayout(Base):
    """One loan's subsidy, paid once: UNIQUE(run_id, loan_id) and, across runs, UNIQUE(loan_id)."""

    __tablename__ = "subsidy_payout"
    __table_args__ = (
        UniqueConstraint("run_id", "loan_id"),
        Index("uq_subsidy_payout_loan", "loan_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), index=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True))
    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the borrower's village
    household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    coop_code: Mapped[str] = mapped_column(String(32))
    principal: Mapped[Decimal] = mapped_column(Money)
    days: Mapped[int] = mapped_column(Integer)
    principal_days: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    rate: Mapped[Decimal] = mapped_column(Rate)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_on: Mapped[date] = mapped_column(Date)
    source_code: Mapped[str] = mapped_column(String(120))  # ledger account paying
    target_code: Mapped[str] = mapped_column(String(120))  # ledger account receiving
    entry_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True))
