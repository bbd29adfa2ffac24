"""county: every area-owned table carries the 6-digit county it belongs to (issue 16)

Citus distributes a table by one of its columns and refuses a generated one, so the county a row belongs
to is stored: `county varchar(6) NOT NULL`, the prefix of `area_code`, filled by every insert (ORM and Core
inserts through `fupin.base`, raw SQL inserts name it). On plain PostgreSQL it is an ordinary column; on a
Citus coordinator `fupin distribute` distributes these tables by it, co-located (fupin.distribution).
`county_code` is not reused: it already holds 12-digit county area codes in several domains.

Revision ID: citus0100
Revises: field0110
Create Date: 2026-12-01 19:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'citus0100'
down_revision: str | Sequence[str] | None = 'field0110'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The area-owned tables at this revision (fupin.distribution.PLACEMENT); a later table adds its own column.
TABLES = (
    'bank_batch', 'bank_batch_event', 'bank_batch_line', 'bank_batch_result', 'bank_loan_event',
    'dividend_holding', 'document', 'idempotency_key', 'dividend_payout', 'dividend_pool', 'dividend_run', 'help_measure', 'help_plan',
    'household', 'household_event', 'household_member', 'insurance_claim', 'insurance_claim_bill',
    'insurance_policy', 'loan', 'loan_application', 'loan_application_step', 'loan_certificate',
    'loan_notification', 'loan_quota', 'loan_quota_confirmed', 'loan_repayment', 'loan_township_readiness',
    'monitored_household', 'monitored_person', 'monitoring_measure', 'monitoring_step', 'monitoring_warning',
    'pairing', 'project', 'project_area', 'project_beneficiary', 'project_bid', 'project_budget',
    'project_fund', 'project_notice', 'project_progress', 'project_transition', 'quota_proposal',
    'repayment_check', 'repayment_check_loan', 'screening', 'screening_row', 'subsidy_payout', 'subsidy_run',
    'visit',
)


def upgrade() -> None:
    for table in TABLES:
        # Append-only tables refuse UPDATE through a trigger; the backfill is the one sanctioned change.
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        op.execute(f"ALTER TABLE {table} ADD COLUMN county varchar(6)")
        op.execute(f"UPDATE {table} SET county = left(area_code, 6)")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN county SET NOT NULL")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN county")
