"""ops: the request that asked for a job run

Revision ID: o0100
Revises: 0080
Create Date: 2026-12-01 13:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'o0100'
down_revision: str | Sequence[str] | None = '0080'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The API request id of the request whose transaction created the run (NULL for cron and CLI runs):
    # a problem+json request_id leads to its log lines and, through this column, to its jobs.
    op.add_column('job_run', sa.Column('request_id', sa.String(length=64), nullable=True))
    op.create_index('ix_job_run_request_id', 'job_run', ['request_id'],
                    postgresql_where=sa.text('request_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_job_run_request_id', table_name='job_run')
    op.drop_column('job_run', 'request_id')
