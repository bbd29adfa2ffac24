"""Poverty-alleviation projects (扶贫项目): library, lifecycle, beneficiaries, funds.

Area-owned: `area_code` is the county or township that owns the project; every child row carries the
project's `area_code` so row-level security hides it together with its project.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Timestamps, UUIDPk


def _project_fk() -> Any:
    return mapped_column(PgUUID(as_uuid=True), ForeignKey("project.id", ondelete="CASCADE"), index=True)


class Project(UUIDPk, Timestamps, Base):
    __tablename__ = "project"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # owning county or township
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    department: Mapped[str] = mapped_column(String(100))  # owning department (主管部门)
    implementing_unit: Mapped[str] = mapped_column(String(200))  # 实施/承担单位
    quantities: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The state a suspended project resumes to.
    suspended_from: Mapped[str | None] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(500))
    accepted_on: Mapped[date | None] = mapped_column(Date)
    acceptance_team: Mapped[str | None] = mapped_column(String(300))
    acceptance_result: Mapped[str | None] = mapped_column(String(500))
    final_paid: Mapped[bool] = mapped_column(Boolean, default=False)


class ProjectBudget(Base):
    """Budget per funding source (central, provincial, municipal, county, other)."""

    __tablename__ = "project_budget"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)


class ProjectArea(Base):
    """Townships and villages a project covers (到村)."""

    __tablename__ = "project_area"

    project_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    level: Mapped[str] = mapped_column(String(10))  # township | village
    area_code: Mapped[str] = mapped_column(String(12), index=True)


class ProjectTransition(UUIDPk, Base):
    """Immutable status history."""

    __tablename__ = "project_transition"

    project_id: Mapped[uuid.UUID] = _project_fk()
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectNotice(UUIDPk, Base):
    """Public notice (公告公示) with its period: before approval and after acceptance."""

    __tablename__ = "project_notice"
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="period_ordered"),)

    project_id: Mapped[uuid.UUID] = _project_fk()
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # pre_approval | post_acceptance
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    content: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectBid(UUIDPk, Base):
    __tablename__ = "project_bid"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("uq_project_bid_one_winner", "project_id", unique=True, postgresql_where="winner"),
    )

    project_id: Mapped[uuid.UUID] = _project_fk()
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    bidder: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    winner: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectProgress(UUIDPk, Base):
    __tablename__ = "project_progress"
    __table_args__ = (CheckConstraint("percent >= 0 AND percent <= 100", name="percent_range"),)

    project_id: Mapped[uuid.UUID] = _project_fk()
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    percent: Mapped[int] = mapped_column(Integer)
    reported_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectBeneficiary(UUIDPk, Base):
    """A household a project benefits (到户), with its benefit."""

    __tablename__ = "project_beneficiary"
    __table_args__ = (
        UniqueConstraint("project_id", "household_id", "benefit_kind"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    project_id: Mapped[uuid.UUID] = _project_fk()
    # The household's village, not the project's area: a township sees every benefit its households
    # receive (the per-household cap needs that), including from county projects.
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    project_kind: Mapped[str] = mapped_column(String(32))  # denormalised for the cap sum
    household_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("household.id"), index=True)
    benefit_kind: Mapped[str] = mapped_column(String(16))  # cash | jobs | dividends | infrastructure
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectFund(UUIDPk, Base):
    """One money movement: an allocation (source → project) or a disbursement (project → payee)."""

    __tablename__ = "project_fund"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    project_id: Mapped[uuid.UUID] = _project_fk()
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    movement: Mapped[str] = mapped_column(String(16), index=True)  # allocation | disbursement
    source: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    effective_on: Mapped[date] = mapped_column(Date)
    payee_kind: Mapped[str | None] = mapped_column(String(16))  # implementer | bidder
    payee: Mapped[str | None] = mapped_column(String(200))
    milestone: Mapped[str | None] = mapped_column(String(200))
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    journal_entry_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectSetting(UUIDPk, Base):
    """Per-county project policy, effective-dated. No row in force = cap off (the default)."""

    __tablename__ = "project_setting"
    __table_args__ = (
        CheckConstraint("household_benefit_cap IS NULL OR household_benefit_cap > 0", name="cap_positive"),
        CheckConstraint("effective_to IS NULL OR effective_to > effective_from", name="period_ordered"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # county code
    # 004 L179: 「每户从中累计受益不超过三千元」 — cumulative direct benefit from industry projects.
    household_benefit_cap: Mapped[Decimal | None] = mapped_column(Money)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
