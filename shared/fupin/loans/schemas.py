"""API shapes of the loans domain. Amounts are decimal strings in yuan; floats are refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from fupin.loans.statuses import ApplicationStatus, CertificateStatus, LoanStatus
from fupin.money import RATE_STRING, Day, Money, MoneyIn, PositiveMoney, rate_schema
from fupin.schema import FupinSchema

RateIn = Annotated[
    Decimal, RATE_STRING, Field(ge=0, lt=1, max_digits=9, decimal_places=6), rate_schema("0.043500", "≥ 0, < 1"),
]
AreaCode = Annotated[str, Field(pattern=r"^\d{12}$")]
Product = Literal["household", "tehuidai", "enterprise"]
Purpose = Literal["tobacco", "sugar", "mulberry", "livestock", "vegetables", "other_farming", "non_productive"]
StepName = Literal[
    "village_review", "village_reject", "station_recommend", "station_reject", "coop_assess",
    "poverty_office_approve", "credit_union_approve", "poverty_office_review", "approve", "reject",
]


class ProductRuleCreate(FupinSchema):
    county_code: AreaCode
    product: Product
    approval_threshold: PositiveMoney | None = None
    max_amount: PositiveMoney | None = None
    per_member: bool = False
    max_term_months: int = Field(ge=1, le=120)
    effective_from: Day


class ProductRuleRead(FupinSchema):
    id: uuid.UUID
    county_code: str
    product: str
    approval_threshold: Money | None
    max_amount: Money | None
    per_member: bool
    max_term_months: int
    effective_from: Day


class ReadinessSet(FupinSchema):
    ready: bool
    note: str = Field(default="", max_length=300)


class ReadinessRead(FupinSchema):
    area_code: str
    ready: bool
    note: str


class QuotaSet(FupinSchema):
    township_code: AreaCode
    year: int = Field(ge=2000, le=2100)
    amount: MoneyIn


class QuotaRead(FupinSchema):
    township_code: str
    year: int
    amount: Money
    used: Money
    remaining: Money


class CertificateReview(FupinSchema):
    household_id: uuid.UUID
    credit_rating: Literal["excellent", "good", "fair"]
    opinion: str = Field(min_length=1, max_length=500)
    on: Day


class CertificateIssue(FupinSchema):
    number: str = Field(min_length=1, max_length=32)
    on: Day


class CertificateRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    household_id: uuid.UUID
    status: CertificateStatus
    credit_rating: str
    village_opinion: str
    village_reviewed_on: Day
    number: str | None
    issued_on: Day | None
    issued_by: str | None
    allowed_actions: list[str] = Field(default_factory=list, description=(
        "`issue` (`POST /loan-certificates/{id}/issue`) while the certificate awaits the credit coop and the caller "
        "may issue it; else empty."), examples=[["issue"]])


class ApplicationCreate(FupinSchema):
    product: Product = "household"
    household_id: uuid.UUID | None = None
    applicant_member_id: uuid.UUID | None = None
    enterprise_name: str | None = Field(default=None, min_length=1, max_length=200)
    township_code: AreaCode | None = Field(default=None, description="enterprise loans only")
    amount: PositiveMoney
    term_months: int = Field(ge=1, le=120)
    purpose: Purpose
    on: Day | None = Field(default=None, description="submission date; today (Asia/Shanghai) when absent")


class ApplicationRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    township_code: str
    applicant_kind: str
    household_id: uuid.UUID | None
    applicant_member_id: uuid.UUID | None
    enterprise_name: str | None
    product: str
    amount: Money
    term_months: int
    purpose: str
    subsidy_eligible: bool
    family_planning: bool
    veteran: bool
    needs_county_approval: bool
    poverty_office_approved_on: Day | None
    credit_union_approved_on: Day | None
    status: ApplicationStatus
    submitted_on: Day
    village_reviewed_on: Day | None
    station_due_on: Day | None
    station_reviewed_on: Day | None
    coop_due_on: Day | None
    coop_assessed_on: Day | None
    decided_on: Day | None
    allowed_actions: list[str] = Field(default_factory=list, description=(
        "Steps the caller's role may post now (`POST /loan-applications/{id}/steps`), in workflow order; other "
        "checks (dates, eligibility, quota) still apply when the step is posted. Empty in lists."),
        examples=[["station_recommend", "station_reject"]])


class StepCreate(FupinSchema):
    step: StepName
    opinion: str = Field(default="", max_length=1000)
    on: Day | None = Field(default=None, description="date of the review; today (Asia/Shanghai) when absent")


class LoanStepRead(FupinSchema):
    id: uuid.UUID
    application_id: uuid.UUID
    step: str
    from_status: str
    to_status: str
    role: str
    actor: str
    on_date: Day
    opinion: str
    recorded_at: datetime
    station_due_on: Day | None = Field(None, description="The application's township-station deadline after this step")
    coop_due_on: Day | None = Field(None, description="The application's credit-coop deadline after this step")
    allowed_actions: list[str] = Field(default_factory=list, description="Steps the caller may post next")


StepRead = LoanStepRead  # the short name importers use; the OpenAPI name must be unique


class HolidaySet(FupinSchema):
    year: int = Field(ge=2000, le=2100)
    holidays: list[Day] = Field(default_factory=list, max_length=366)
    workdays: list[Day] = Field(default_factory=list, max_length=366)
    complete: bool = Field(default=False, description="declare the year complete: unlisted days follow Mon–Fri")


class HolidayYearRead(FupinSchema):
    year: int
    complete: bool
    holidays: list[Day]
    workdays: list[Day]


class RepaymentRead(FupinSchema):
    id: uuid.UUID
    amount: Money
    paid_on: Day
    source_event_id: str | None


class LoanRead(FupinSchema):
    id: uuid.UUID
    area_code: str
    township_code: str
    household_id: uuid.UUID | None
    enterprise_name: str | None
    application_id: uuid.UUID | None
    product: str
    purpose: str
    productive: bool
    principal: Money
    outstanding: Money
    interest_rate: Decimal
    disbursed_on: Day
    due_on: Day
    repaid_on: Day | None
    status: LoanStatus
    coop_code: str
    external_id: str | None


class LoanDetail(LoanRead):
    repayments: list[RepaymentRead]


class BankEvent(FupinSchema):
    event_id: str = Field(min_length=1, max_length=100)
    kind: Literal["disbursement", "repayment", "reversal"]
    application_id: uuid.UUID | None = None
    external_id: str | None = Field(default=None, max_length=64)
    amount: PositiveMoney | None = None
    on: Day
    due_on: Day | None = None
    rate: RateIn | None = None
    reverses_event_id: str | None = Field(default=None, max_length=100)


class BankEventBatch(FupinSchema):
    events: list[BankEvent] = Field(min_length=1, max_length=1000)


class BankEventResult(FupinSchema):
    event_id: str
    status: Literal["applied", "parked", "duplicate", "conflict", "refused"]
    http_status: int
    code: str | None = None
    detail: str | None = None
    loan_id: uuid.UUID | None = None


class BankEventResults(FupinSchema):
    results: list[BankEventResult]


class NoticeLine(FupinSchema):
    application_id: uuid.UUID
    area_code: str
    applicant: str
    amount: Money
    purpose: str
    on: Day
    outcome: str


class LoanNotice(FupinSchema):
    township_code: str
    month: str
    recommended: list[NoticeLine]
    decisions: list[NoticeLine]
    disbursements: list[NoticeLine]


class QuarterlyReport(FupinSchema):
    township_code: str
    quarter: str
    version: Literal["station", "coop"]
    due_on: Day
    disbursed_count: int
    disbursed_amount: Money
    recovered_amount: Money


class ReconciliationLine(FupinSchema):
    application_id: uuid.UUID
    loan_id: uuid.UUID | None
    station_disbursed: Money
    coop_disbursed: Money
    station_recovered: Money
    coop_recovered: Money


class Reconciliation(FupinSchema):
    township_code: str
    quarter: str
    station: QuarterlyReport
    coop: QuarterlyReport
    differences: list[ReconciliationLine]


class BankClientCreate(FupinSchema):
    client_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{3,64}$", examples=["rcc-520123"])
    institution_code: str = Field(min_length=1, max_length=32, examples=["RCC520123"])
    area_code: AreaCode = Field(examples=["520123000000"])


class BankClientRotate(FupinSchema):
    overlap_hours: int = Field(default=24, ge=0, le=720)


class BankClientSecretRead(FupinSchema):
    client_id: str
    institution_code: str
    area_code: str
    secret: str = Field(description="shown once; store it in the client's vault")
    previous_valid_until: datetime | None = None


class BankFileRead(FupinSchema):
    """An uploaded daily file and how far its processing has come."""

    id: uuid.UUID
    format: str = Field(description="csv or jsonl")
    filename: str | None = None
    sha256: str | None = Field(None, description="SHA-256 of the bytes received, hex")
    bytes: int
    lines: int = Field(description="lines in the file (a CSV header counts as line 1)")
    status: str = Field(description="received (waiting for or being applied), done, or failed")
    job_id: uuid.UUID | None = Field(None, description="the job run applying it: GET /jobs/{job_id} for staff")
    job_status: str | None = Field(None, description="pending, running, done, failed (retried) or dead")
    progress_done: int | None = Field(None, description="lines evaluated so far")
    progress_total: int | None = None
    counts: dict[str, int] | None = Field(None, description="events by outcome once done: applied, parked, "
                                                             "refused, duplicate, conflict")
    error: str | None = None
    received_at: datetime
    finished_at: datetime | None = None
    results_url: str = Field(description="where the per-line results are read once done")


class BankLineResult(FupinSchema):
    line_no: int = Field(description="the line of the file this answers (a CSV header is line 1)")
    event_id: str | None
    status: Literal["applied", "parked", "duplicate", "conflict", "refused"]
    http_status: int = Field(description="what a one-by-one post of this event would have answered")
    code: str | None = None
    detail: str | None = None
    loan_id: uuid.UUID | None = None


class BankLineResults(FupinSchema):
    items: list[BankLineResult]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null at the end")
