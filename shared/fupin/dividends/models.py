"""Dividend pools (特惠贷 pooled investments, cooperative shares), holdings, runs and payouts.

Area-owned: a pool and its runs carry the pool's area (county or township); holdings and payouts
carry the household's village, so a township sees its own households' rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Rate, Timestamps, UUIDPk


class DividendPool(UUIDPk, Timestamps, Base):
    __tablename__ = "dividend_pool"
    __table_args__ = (
        CheckConstraint(
            "(model = 'rate' AND rate > 0 AND fixed_amount IS NULL)"
            " OR (model = 'fixed' AND fixed_amount > 0 AND rate IS NULL)",
            name="model_terms",
        ),
        CheckConstraint("term_years BETWEEN 1 AND 30", name="term_range"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # county or township
    name: Mapped[str] = mapped_column(String(200))
    operator_name: Mapped[str] = mapped_column(String(200))
    operator_kind: Mapped[str] = mapped_column(String(16))  # company | cooperative
    model: Mapped[str] = mapped_column(String(16))  # rate | fixed
    rate: Mapped[Decimal | None] = mapped_column(Rate)  # yearly, on the invested amount
    fixed_amount: Mapped[Decimal | None] = mapped_column(Money)  # per household per year
    term_years: Mapped[int] = mapped_column(Integer)
    start_on: Mapped[date] = mapped_column(Date)
    # Cooperative model: accident insurance the cooperative buys for the head of household (002 L23).
    insurance_premium: Mapped[Decimal | None] = mapped_column(Money)
    insurance_cover: Mapped[Decimal | None] = mapped_column(Money)
    # 特惠贷: 「贫困户人均可贷款5万元」 (001 L41): a holding is at most this × the household's active members.
    per_person_cap: Mapped[Decimal | None] = mapped_column(Money)
    created_by: Mapped[str] = mapped_column(String(64), default="system")


class DividendHolding(UUIDPk, Timestamps, Base):
    __tablename__ = "dividend_holding"
    __table_args__ = (
        UniqueConstraint("pool_id", "household_id", name="uq_dividend_holding_pool_household"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("end_on >= start_on", name="dates_ordered"),
    )

    pool_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("dividend_pool.id"), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("household.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the household's village
    amount: Mapped[Decimal] = mapped_column(Money)  # invested principal or share
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date, index=True)  # last day of the contract, inclusive
    status: Mapped[str] = mapped_column(String(20), index=True)  # active matured renewed redeemed redeemed_in_kind
    loan_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("loan.id"))
    closed_on: Mapped[date | None] = mapped_column(Date)
    redemption_entry_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))


class DividendRun(UUIDPk, Base):
    __tablename__ = "dividend_run"
    __table_args__ = (UniqueConstraint("pool_id", "period", name="uq_dividend_run_pool_period"),)

    pool_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("dividend_pool.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the pool's area
    period: Mapped[str] = mapped_column(String(24))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    job_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | paid
    run_on: Mapped[date | None] = mapped_column(Date)  # the day persons were counted and money moved
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    households: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    # The run's one journal entry: operator → every paid household (none when nothing was due).
    entry_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"))
    requested_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DividendPayout(UUIDPk, Base):
    __tablename__ = "dividend_payout"
    __table_args__ = (
        UniqueConstraint("run_id", "holding_id", name="uq_dividend_payout_run_holding"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    # Written only by the run's INSERT … SELECT from dividend_holding, so the holding id is valid by
    # construction; the columns below are copies from the holding and run. Per-row FK checks and
    # random-UUID index upkeep were most of the cost of a 50k-household run, so payouts keep one FK
    # (the run), the unique (run_id, holding_id) and the household index the household view reads.
    # The copies also let a household's own area read its dividends when the pool is the county's
    # (RLS hides county rows from a township).
    run_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("dividend_run.id"))
    holding_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True))
    household_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), index=True)
    area_code: Mapped[str] = mapped_column(String(12))
    pool_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True))
    pool_name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(24))
    period_end: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    days_held: Mapped[int] = mapped_column(Integer)
    persons: Mapped[int] = mapped_column(Integer)  # active members on the run date
