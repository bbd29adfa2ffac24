"""Pairing (结对帮扶): helping units, cadres, unit↔village assignments, work teams, cadre↔household
pairings, visits, help plans and the per-county pairing settings. Every table is area-owned.

Units and cadres carry their county's code (a county-wide directory); pairings, visits and plans
carry the household's village code; assignments and work teams carry the village code.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Timestamps, UUIDPk


def _fk(target: str, **kw: object) -> Mapped[uuid.UUID]:
    return mapped_column(PgUUID(as_uuid=True), ForeignKey(target), index=True, **kw)  # type: ignore[arg-type]


class HelpingUnit(UUIDPk, Timestamps, Base):
    """帮扶单位: a county bureau, school or enterprise (or a province/city unit working in the county)."""

    __tablename__ = "helping_unit"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # bureau | school | enterprise | other
    level: Mapped[str] = mapped_column(String(10))  # province | city | county | township
    contact: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Cadre(UUIDPk, Timestamps, Base):
    """帮扶责任人: belongs to a unit; retired or transferred cadres take no new households."""

    __tablename__ = "cadre"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the unit's county
    unit_id: Mapped[uuid.UUID] = _fk("helping_unit.id")
    name: Mapped[str] = mapped_column(String(50))
    level: Mapped[str] = mapped_column(String(10))  # province | city | county | township
    contact: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | retired | transferred
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("app_user.id"), unique=True, nullable=True
    )


class VillageAssignment(UUIDPk, Timestamps, Base):
    """单位包村: a unit helps a village from `start_date` until `end_date` (inclusive), lead or not."""

    __tablename__ = "village_assignment"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the village
    unit_id: Mapped[uuid.UUID] = _fk("helping_unit.id")
    lead: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class WorkTeam(UUIDPk, Timestamps, Base):
    """驻村工作队: first secretary, team leader and members stationed in a village."""

    __tablename__ = "work_team"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the village
    unit_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("helping_unit.id"))
    first_secretary_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("cadre.id"))
    leader_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("cadre.id"))
    member_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(PgUUID(as_uuid=True)), default=list)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class Pairing(UUIDPk, Timestamps, Base):
    """干部包户: active while `end_date` is null; on `end_date` the successor (if any) takes over."""

    __tablename__ = "pairing"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the household's village
    cadre_id: Mapped[uuid.UUID] = _fk("cadre.id")
    household_id: Mapped[uuid.UUID] = _fk("household.id")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(200))
    successor_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("pairing.id"))

    __table_args__ = (
        # A cadre holds a household at most once at a time.
        Index(
            "uq_pairing_active_cadre_household", "cadre_id", "household_id",
            unique=True, postgresql_where=text("end_date IS NULL"),
        ),
    )


class PairingSetting(UUIDPk, Timestamps, Base):
    """Per-county pairing rules from `effective_from`: the cap on a cadre's active households (null =
    no cap, the default) and the visit frequency (default at least 1 visit per month)."""

    __tablename__ = "pairing_setting"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    effective_from: Mapped[date] = mapped_column(Date)
    max_households_per_cadre: Mapped[int | None] = mapped_column(Integer)
    visits_required: Mapped[int] = mapped_column(Integer, default=1)
    visit_period: Mapped[str] = mapped_column(String(8), default="month")  # month | quarter

    __table_args__ = (UniqueConstraint("area_code", "effective_from"),)


class Visit(UUIDPk, Timestamps, Base):
    """走访: recorded by the paired cadre, or by station staff on the cadre's behalf (`on_behalf`)."""

    __tablename__ = "visit"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    household_id: Mapped[uuid.UUID] = _fk("household.id")
    cadre_id: Mapped[uuid.UUID] = _fk("cadre.id")
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(12))  # routine | condolence | survey
    findings: Mapped[str] = mapped_column(Text, default="")
    measures: Mapped[str] = mapped_column(Text, default="")
    photo_refs: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("app_user.id"))
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the phone recorded it, for a visit synced from offline work (its id is then the phone's).
    client_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HelpPlan(UUIDPk, Timestamps, Base):
    """一户一策: one plan per household per year with the cadre responsible."""

    __tablename__ = "help_plan"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    household_id: Mapped[uuid.UUID] = _fk("household.id")
    year: Mapped[int] = mapped_column(Integer)
    cadre_id: Mapped[uuid.UUID] = _fk("cadre.id")

    __table_args__ = (UniqueConstraint("household_id", "year"),)


class HelpMeasure(UUIDPk, Timestamps, Base):
    """帮扶措施 of a plan."""

    __tablename__ = "help_measure"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("help_plan.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the plan
    kind: Mapped[str] = mapped_column(String(8))  # 产业 就业 教育 健康 兜底保障 易地搬迁 金融 技能培训 其他
    description: Mapped[str] = mapped_column(String(500))
    funds: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    target_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")  # planned | in_progress | done | cancelled
    client_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # offline sync
