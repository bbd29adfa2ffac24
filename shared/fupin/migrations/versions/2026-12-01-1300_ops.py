"""ops: the request that asked for a job run; runs that wait for their input

Revision ID: o0100
Revises: 0110
Create Date: 2026-12-01 13:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'o0100'
down_revision: str | Sequence[str] | None = '0110'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The API request id of the request whose transaction created the run (NULL for cron and CLI runs):
    # a problem+json request_id leads to its log lines and, through this column, to its jobs.
    op.add_column('job_run', sa.Column('request_id', sa.String(length=64), nullable=True))
    op.create_index('ix_job_run_request_id', 'job_run', ['request_id'],
                    postgresql_where=sa.text('request_id IS NOT NULL'))
    # status 'waiting': the run's input is not ready (not a failure); it is delivered again when the run
    # keyed waiting_for is done. The partial index serves that release, which every completed run does.
    op.add_column('job_run', sa.Column('waiting_reason', sa.Text(), nullable=True))
    op.add_column('job_run', sa.Column('waiting_for', sa.String(length=200), nullable=True))
    op.create_index('ix_job_run_waiting_for', 'job_run', ['waiting_for'],
                    postgresql_where=sa.text("status = 'waiting'"))
    # Runs the old code parked as transient failures because their input was not ready.
    op.execute(
        "UPDATE job_run SET status = 'waiting', waiting_reason = last_error, last_error = NULL, "
        "waiting_for = 'subsidy.allocation:' || substring(key from '^subsidy\\.preallocation:(.*)$') "
        "WHERE status = 'failed' AND kind = 'subsidy.preallocation' AND last_error LIKE 'NotReady(%'"
    )


def downgrade() -> None:
    # The old code knows no 'waiting': such runs become transient failures, which it retries.
    op.execute(
        "UPDATE job_run SET status = 'failed', last_error = coalesce(waiting_reason, 'waiting') "
        "WHERE status = 'waiting'"
    )
    op.drop_index('ix_job_run_waiting_for', table_name='job_run')
    op.drop_column('job_run', 'waiting_for')
    op.drop_column('job_run', 'waiting_reason')
    op.drop_index('ix_job_run_request_id', table_name='job_run')
    op.drop_column('job_run', 'request_id')
