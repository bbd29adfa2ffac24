"""Poverty-return prevention (防返贫): county policies, monitored households (registered or entered just
for monitoring) and their people, warnings, the workflow's immutable steps, assistance measures,
departmental screening files with their per-row results, and poverty-prevention insurance.

Area-owned: policies, screenings and insurance policies carry the county code; everything about a
household carries its village code (screening rows that matched no one carry the county's).
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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, Money, Rate, Timestamps, UUIDPk


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Mapped[Any]:
    return mapped_column(PgUUID(as_uuid=True), ForeignKey(target), index=index, nullable=nullable)


class MonitoringPolicy(UUIDPk, Timestamps, Base):
    """A county's monitoring settings from `effective_from` (the latest start on or before a day wins)."""

    __tablename__ = "monitoring_policy"
    __table_args__ = (
        UniqueConstraint("area_code", "effective_from", name="uq_monitoring_policy_area_from"),
        CheckConstraint("income_line > 0", name="income_line_positive"),
        CheckConstraint("expense_ratio > 0 AND expense_ratio <= 1", name="expense_ratio_range"),
        CheckConstraint("decision_days BETWEEN 1 AND 120", name="decision_days_range"),
        CheckConstraint("elimination_months BETWEEN 1 AND 36", name="elimination_months_range"),
        CheckConstraint("measure_days BETWEEN 1 AND 120", name="measure_days_range"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    effective_from: Mapped[date] = mapped_column(Date)
    income_line: Mapped[Decimal] = mapped_column(Money)
    expense_ratio: Mapped[Decimal] = mapped_column(Rate)
    decision_days: Mapped[int] = mapped_column(Integer)
    elimination_months: Mapped[int] = mapped_column(Integer)
    measure_days: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(64))


class MonitoredHousehold(UUIDPk, Timestamps, Base):
    """One household under the programme, with its current cycle (a household eliminated or dismissed
    can be warned again: a new cycle, the old steps kept)."""

    __tablename__ = "monitored_household"
    __table_args__ = (
        CheckConstraint("household_id IS NOT NULL OR kind <> 'unstable_exited'", name="exited_is_registered"),
        CheckConstraint("cycle >= 1 AND persons >= 1", name="counts_positive"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the village
    # The registry household (建档立卡), or null for a household entered just for monitoring.
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("household.id"), unique=True, nullable=True
    )
    head_name: Mapped[str] = mapped_column(String(50))
    address: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20), index=True)
    cause: Mapped[str] = mapped_column(String(20))  # the current cycle's main risk cause
    status: Mapped[str] = mapped_column(String(24), index=True)
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    persons: Mapped[int] = mapped_column(Integer)
    income_per_capita: Mapped[Decimal] = mapped_column(Money)  # yuan per person per year, last reported
    opened_on: Mapped[date] = mapped_column(Date, index=True)  # the current cycle's first warning
    decision_due_on: Mapped[date] = mapped_column(Date, index=True)
    decided_on: Mapped[date | None] = mapped_column(Date)
    measure_due_on: Mapped[date | None] = mapped_column(Date)
    stable_since: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    # The responsible cadre of a household outside the registry (registry households use `pairing`).
    cadre_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("cadre.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))


class MonitoredPerson(UUIDPk, Timestamps, Base):
    """A member of a household entered just for monitoring (registry members live in household_member)."""

    __tablename__ = "monitored_person"
    __table_args__ = (
        Index("uq_monitored_person_active_id_number", "id_number", unique=True, postgresql_where=text("active")),
    )

    monitored_household_id: Mapped[uuid.UUID] = _fk("monitored_household.id")
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str] = mapped_column(String(18))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    relation: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MonitoringWarning(UUIDPk, Base):
    """A risk signal about a household: it opens a cycle, or is attached to the open one."""

    __tablename__ = "monitoring_warning"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    monitored_household_id: Mapped[uuid.UUID] = _fk("monitored_household.id")
    cycle: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    screening_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), index=True)
    screening_source: Mapped[str | None] = mapped_column(String(16))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("visit.id"))
    cause: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    detail: Mapped[str] = mapped_column(String(500), default="")
    raised_on: Mapped[date] = mapped_column(Date, index=True)
    # Routed to: the household's village (area_code) and its paired cadre.
    cadre_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), index=True)
    opened_cycle: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MonitoringStep(UUIDPk, Base):
    """Immutable history: every workflow step with its role, date, opinion and what was found."""

    __tablename__ = "monitoring_step"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    monitored_household_id: Mapped[uuid.UUID] = _fk("monitored_household.id")
    cycle: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    role: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    on_date: Mapped[date] = mapped_column(Date)
    opinion: Mapped[str] = mapped_column(String(1000), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MonitoringMeasure(UUIDPk, Timestamps, Base):
    """An assistance measure (帮扶措施) of a monitoring cycle, with the responsible unit and cadre."""

    __tablename__ = "monitoring_measure"
    __table_args__ = (CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    monitored_household_id: Mapped[uuid.UUID] = _fk("monitored_household.id")
    cycle: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(500))
    responsible_unit: Mapped[str] = mapped_column(String(100))
    cadre_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("cadre.id"))
    started_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12))
    claim_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))


class Screening(UUIDPk, Base):
    """One department's file, applied all or nothing; the same file twice is refused."""

    __tablename__ = "screening"
    __table_args__ = (UniqueConstraint("area_code", "source", "content_sha256", name="uq_screening_file"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    source: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200), default="")
    content_sha256: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[date] = mapped_column(Date)
    rows: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[int] = mapped_column(Integer)
    attached: Mapped[int] = mapped_column(Integer)
    below_threshold: Mapped[int] = mapped_column(Integer)
    in_registry: Mapped[int] = mapped_column(Integer)
    unmatched: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScreeningRow(Base):
    """The result of one row. Only the masked ID number is kept, and the name only of people matched in
    the area: a medical file lists the whole population, most of whom are none of our business."""

    __tablename__ = "screening_row"

    # Written only by the screening's one INSERT … SELECT: the key is (screening, row) in file order,
    # no per-row FK check or random-UUID index (a 500k-row file is one statement).
    screening_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))  # read by screening, never by area alone
    id_masked: Mapped[str] = mapped_column(String(18))
    name: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    event_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(16))
    monitored_household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    warning_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))


class InsurancePolicy(UUIDPk, Timestamps, Base):
    """A county's poverty-prevention insurance for a period: insured population and premium, the payout
    tiers over out-of-pocket cost after a deductible, and the annual cap per person. Never edited: a
    change of tiers is a new policy from a later date."""

    __tablename__ = "insurance_policy"
    __table_args__ = (
        UniqueConstraint("area_code", "effective_from", name="uq_insurance_policy_area_from"),
        CheckConstraint("effective_to >= effective_from", name="dates_ordered"),
        CheckConstraint("insured_persons > 0 AND premium_per_person > 0", name="premium_positive"),
        CheckConstraint("deductible >= 0 AND annual_cap > 0", name="terms_positive"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the county
    name: Mapped[str] = mapped_column(String(200))
    insurer: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date] = mapped_column(Date)
    insured_persons: Mapped[int] = mapped_column(Integer)
    premium_per_person: Mapped[Decimal] = mapped_column(Money)
    premium_total: Mapped[Decimal] = mapped_column(Money)
    deductible: Mapped[Decimal] = mapped_column(Money)
    annual_cap: Mapped[Decimal] = mapped_column(Money)
    tiers: Mapped[list[dict[str, str]]] = mapped_column(JSONB)  # [{"start": "0.00", "rate": "0.300000"}, …]
    premium_entry_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"))
    premium_posted_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64))


class InsuranceClaim(UUIDPk, Timestamps, Base):
    """A claim of one monitored person with their bills: submitted → assessed → approved → paid (or rejected)."""

    __tablename__ = "insurance_claim"
    __table_args__ = (
        CheckConstraint("out_of_pocket >= 0 AND out_of_pocket <= total_cost", name="costs_consistent"),
        CheckConstraint("payable IS NULL OR payable >= 0", name="payable_not_negative"),
    )

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the household's village
    policy_id: Mapped[uuid.UUID] = _fk("insurance_policy.id")
    monitored_household_id: Mapped[uuid.UUID] = _fk("monitored_household.id")
    # The insured person: a registry member or a monitored person, named by ID number (kept masked here).
    person_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), index=True)
    person_name: Mapped[str] = mapped_column(String(50))
    id_masked: Mapped[str] = mapped_column(String(18))
    total_cost: Mapped[Decimal] = mapped_column(Money)
    out_of_pocket: Mapped[Decimal] = mapped_column(Money)
    payable: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12), index=True)
    submitted_on: Mapped[date] = mapped_column(Date)
    submitted_by: Mapped[str] = mapped_column(String(64))
    assessed_on: Mapped[date | None] = mapped_column(Date)
    assessed_by: Mapped[str | None] = mapped_column(String(64))
    approved_on: Mapped[date | None] = mapped_column(Date)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    paid_on: Mapped[date | None] = mapped_column(Date, index=True)
    paid_by: Mapped[str | None] = mapped_column(String(64))
    rejected_on: Mapped[date | None] = mapped_column(Date)
    opinion: Mapped[str] = mapped_column(String(1000), default="")
    entry_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("journal_entry.id"))


class InsuranceClaimBill(UUIDPk, Base):
    """A hospital bill of a claim. One bill is claimed once in its county: a duplicate submission is refused."""

    __tablename__ = "insurance_claim_bill"
    __table_args__ = (
        Index("uq_insurance_claim_bill_active", "county_code", "hospital", "bill_no", unique=True,
              postgresql_where=text("active")),
        CheckConstraint("out_of_pocket >= 0 AND out_of_pocket <= total_cost", name="costs_consistent"),
    )

    claim_id: Mapped[uuid.UUID] = _fk("insurance_claim.id")
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    county_code: Mapped[str] = mapped_column(String(12))
    hospital: Mapped[str] = mapped_column(String(100))
    bill_no: Mapped[str] = mapped_column(String(64))
    bill_date: Mapped[date] = mapped_column(Date)
    total_cost: Mapped[Decimal] = mapped_column(Money)
    out_of_pocket: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # false once the claim is rejected
