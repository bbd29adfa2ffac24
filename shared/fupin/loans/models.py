"""Loans as the bank books them, and their repayments. Area-owned: `area_code` is the borrower's village
(or the enterprise's township). The application workflow lives beside these in the loans domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


# --- loans domain: products, quotas, certificates, applications, bank postings -------------------------------


class LoanProductRule(UUIDPk, Timestamps, Base):
    """Caps and terms of one product in one county from `effective_from` (the latest start ≤ a day wins)."""

    __tablename__ = "loan_product_rule"
    __table_args__ = (UniqueConstraint("county_code", "product", "effective_from", name="county_product_from"),)

    county_code: Mapped[str] = mapped_column(String(12), index=True)
    product: Mapped[str] = mapped_column(String(32))  # household | tehuidai | enterprise
    approval_threshold: Mapped[Decimal | None] = mapped_column(Money)  # above it: poverty office + credit union
    max_amount: Mapped[Decimal | None] = mapped_column(Money)  # hard ceiling (None = no cap)
    per_member: Mapped[bool] = mapped_column(Boolean, default=False)  # max_amount is per household member
    max_term_months: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)


class LoanTownshipReadiness(Timestamps, Base):
    """第五条1: the county marks a township ready (leadership, organisation, staff) before it takes applications."""

    __tablename__ = "loan_township_readiness"

    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)  # township code
    ready: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(300), default="")


class LoanQuota(UUIDPk, Timestamps, Base):
    """贷款计划: the township's annual lending plan (第六条)."""

    __tablename__ = "loan_quota"
    __table_args__ = (UniqueConstraint("area_code", "year", name="township_year"),)

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # township code
    year: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)


class LoanCertificate(UUIDPk, Timestamps, Base):
    """贷款证: village committee's initial review of income and credit standing, then issued by the coop."""

    __tablename__ = "loan_certificate"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("household.id"), index=True, unique=True
    )
    status: Mapped[str] = mapped_column(String(16))  # village_reviewed | issued
    credit_rating: Mapped[str] = mapped_column(String(16))
    village_opinion: Mapped[str] = mapped_column(String(500))
    village_reviewed_on: Mapped[date] = mapped_column(Date)
    number: Mapped[str | None] = mapped_column(String(32))
    issued_on: Mapped[date | None] = mapped_column(Date)
    issued_by: Mapped[str | None] = mapped_column(String(64))


class LoanApplication(UUIDPk, Timestamps, Base):
    __tablename__ = "loan_application"

    area_code: Mapped[str] = mapped_column(String(12), index=True)  # village (household) or township (enterprise)
    township_code: Mapped[str] = mapped_column(String(12), index=True)
    applicant_kind: Mapped[str] = mapped_column(String(16))  # household | enterprise
    household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("household.id"), index=True)
    applicant_member_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32))
    subsidy_eligible: Mapped[bool] = mapped_column(Boolean)
    family_planning: Mapped[bool] = mapped_column(Boolean, default=False)
    veteran: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_county_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    poverty_office_approved_on: Mapped[date | None] = mapped_column(Date)
    credit_union_approved_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(24), index=True)
    submitted_on: Mapped[date] = mapped_column(Date)
    village_reviewed_on: Mapped[date | None] = mapped_column(Date)
    station_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    station_reviewed_on: Mapped[date | None] = mapped_column(Date)
    coop_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    coop_assessed_on: Mapped[date | None] = mapped_column(Date)
    decided_on: Mapped[date | None] = mapped_column(Date, index=True)
    coop_code: Mapped[str | None] = mapped_column(String(32))


class LoanApplicationStep(UUIDPk, Base):
    __tablename__ = "loan_application_step"

    application_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("loan_application.id"), index=True
    )
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    step: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    role: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    on_date: Mapped[date] = mapped_column(Date)
    opinion: Mapped[str] = mapped_column(String(1000), default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoanNotification(UUIDPk, Base):
    """What the household is told at each step; the frontends read these."""

    __tablename__ = "loan_notification"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), index=True)
    application_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), index=True)
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoanHolidayYear(Timestamps, Base):
    """A year an administrator declared complete: days not listed are ordinary Mon–Fri working days."""

    __tablename__ = "loan_holiday_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class LoanHoliday(Base):
    """Extra holidays / make-up working days (调休) beyond what the chinese-calendar package knows."""

    __tablename__ = "loan_holiday"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # holiday | workday
    name: Mapped[str] = mapped_column(String(100), default="")


class BankClient(Timestamps, Base):
    """A machine client of one institution (coop / bank), bound to one area."""

    __tablename__ = "bank_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class BankClientSecret(UUIDPk, Base):
    """HMAC secrets; two may be valid at once while a client rotates."""

    __tablename__ = "bank_client_secret"

    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("bank_client.client_id"), index=True)
    # `fupin.secretbox` ciphertext under `bank_secret_key`, never the secret itself.
    secret: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str] = mapped_column(String(12))  # the client's, for row-level security
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BankLoanEvent(UUIDPk, Base):
    """Every posted event once, by (client, event_id): the idempotency record and the parking lot."""

    __tablename__ = "bank_loan_event"
    __table_args__ = (
        UniqueConstraint("client_id", "event_id", name="client_event"),
        Index("ix_bank_loan_event_parked", "application_id", postgresql_where=text("status = 'parked'")),
    )

    client_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(100))
    body_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    application_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16))  # applied | parked | refused
    code: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# One loan per approved application: a second disbursement of the same application cannot slip in concurrently.
Index("uq_loan_application_id", Loan.application_id, unique=True, postgresql_where=text("application_id IS NOT NULL"))


# --- bank batches: bulk posts and daily files, evaluated set-based --------------------------------------------


class BankBatch(Base):
    """One bulk request or one uploaded daily file of a bank client, and how its processing went."""

    __tablename__ = "bank_batch"
    __table_args__ = (Index("ix_bank_batch_client_id_received_at", "client_id", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("bank_client.client_id"))
    area_code: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(8))  # request | file
    format: Mapped[str] = mapped_column(String(8))  # jsonl | csv
    columns: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))  # a CSV file's header, in order
    filename: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # received | done | failed
    job_key: Mapped[str | None] = mapped_column(String(200))
    counts: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BankBatchLine(Base):
    """A batch's lines as received (a JSON object or a CSV row), numbered from 1."""

    __tablename__ = "bank_batch_line"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("bank_batch.id", ondelete="CASCADE"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    raw: Mapped[str] = mapped_column(Text)


class BankBatchEvent(Base):
    """Working rows of one evaluation: the parsed event, what it refers to and its outcome (unlogged)."""

    __tablename__ = "bank_batch_event"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    batch_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    payload: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    application_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    external_id: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    on_date: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    rate: Mapped[Decimal | None] = mapped_column(Rate)
    reverses_event_id: Mapped[str | None] = mapped_column(Text)
    target_application_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    sequential: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    status: Mapped[str | None] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class BankBatchResult(Base):
    """The answer for each line of a batch, as a one-by-one post of that event would have given it."""

    __tablename__ = "bank_batch_result"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        PgUUID(as_uuid=True), ForeignKey("bank_batch.id", ondelete="CASCADE"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    event_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    loan_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))


Index("ix_loan_coop_code_external_id", Loan.coop_code, Loan.external_id, postgresql_where=text("external_id IS NOT NULL"))
