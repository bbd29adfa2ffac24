"""ledger: a county's settlement is one job, so several township runs share its job key (issue 13)

The quarter's settlement plan asks for one `subsidy.settlement:{county}:{quarter}` job per county; each
township keeps its own `subsidy_run` row (its totals, its roster, its payouts' `run_id`), and those rows
name the county's job in `job_key`. A run requested by hand for one township still has a job of its own.
One run per township, quarter and phase stays unique (`uq_subsidy_run_area_code_quarter_phase`); the key is indexed.

Revision ID: ledger0100
Revises: tidy0100
Create Date: 2026-12-01 20:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'ledger0100'
down_revision: str | Sequence[str] | None = 'tidy0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE subsidy_run DROP CONSTRAINT IF EXISTS uq_subsidy_run_job_key")
    op.create_index('ix_subsidy_run_job_key', 'subsidy_run', ['job_key'], unique=False)


def downgrade() -> None:
    # Only possible while every run has a job of its own (no county settlement has been planned).
    op.drop_index('ix_subsidy_run_job_key', table_name='subsidy_run')
    op.create_unique_constraint('uq_subsidy_run_job_key', 'subsidy_run', ['job_key'])
