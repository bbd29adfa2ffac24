"""Registered poor households (建档立卡贫困户) and their members. Area-owned: `area_code` is the village."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Timestamps, UUIDPk


class Household(UUIDPk, Timestamps, Base):
    __tablename__ = "household"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # village code
    household_no: Mapped[str] = mapped_column(String(32))  # the office's own number in its 台账
    head_name: Mapped[str] = mapped_column(String(50))
    address: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(32))  # general | dibao | tekun (五保/特困供养)
    main_cause: Mapped[str] = mapped_column(String(32))
    # text[] keeps filters simple (`'因病' = ANY(...)`) without a join table
    secondary_causes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    income_per_capita: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    family_planning: Mapped[bool] = mapped_column(Boolean, default=False)  # 计生户/独生子女户
    veteran: Mapped[bool] = mapped_column(Boolean, default=False)  # 退役军人
    status: Mapped[str] = mapped_column(String(24), index=True)  # applied … registered, exited, returned, removed
    year_identified: Mapped[int | None] = mapped_column(Integer)
    year_exited: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("uq_household_area_no", "area_code", "household_no", unique=True),)


class Member(UUIDPk, Timestamps, Base):
    __tablename__ = "household_member"

    household_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("household.id", ondelete="CASCADE"), index=True
    )
    area_code: Mapped[str] = mapped_column(String(12), index=True)  # denormalised for RLS
    name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    sex: Mapped[str] = mapped_column(String(1))  # M | F, derived from the ID number
    birth_date: Mapped[date] = mapped_column(Date)
    relation: Mapped[str] = mapped_column(String(16))  # 户主, 配偶, 子女, 父母, 孙辈, 其他
    labour: Mapped[str] = mapped_column(String(16))  # ordinary | skilled | weak | lost | none
    full_civil_capacity: Mapped[bool] = mapped_column(Boolean, default=True)
    in_school: Mapped[bool] = mapped_column(Boolean, default=False)
    health: Mapped[str] = mapped_column(String(32), default="健康")
    disability: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        # One ID number belongs to at most one active household anywhere.
        Index("uq_member_active_id_number", "id_number", unique=True, postgresql_where=text("active")),
    )


class HouseholdEvent(UUIDPk, Base):
    """Immutable history (append-only): every workflow step, dynamic-management transition and edit."""

    __tablename__ = "household_event"

    household_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), ForeignKey("household.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # transition | update | member | import
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    occurred_on: Mapped[date] = mapped_column(Date)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    actor_name: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    notice_start: Mapped[date | None] = mapped_column(Date)
    notice_end: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(500))
    year: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
