"""job_run carries its area; row-level security on job_run

Revision ID: 0080
Revises: 0070
Create Date: 2026-12-01 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fupin.migrations import helpers

revision: str = '0080'
down_revision: str | Sequence[str] | None = '0070'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # '' is a platform-wide run (a schedule fan-out, the daily audit check): only the system scope '%' sees it.
    op.add_column('job_run', sa.Column('area_code', sa.String(length=12), server_default='', nullable=False))
    # Runs made before this revision name their area in the key (`subsidy.settlement:520123100000:2026Q3`).
    op.execute(
        "UPDATE job_run SET area_code = coalesce(substring(key from ':([0-9]{12})(:|$)'), '')"
    )
    op.create_index('ix_job_run_area_code_created_at', 'job_run', ['area_code', 'created_at'], unique=False)
    helpers.enable_area_rls('job_run')


def downgrade() -> None:
    helpers.disable_area_rls('job_run')
    op.drop_index('ix_job_run_area_code_created_at', table_name='job_run')
    op.drop_column('job_run', 'area_code')
