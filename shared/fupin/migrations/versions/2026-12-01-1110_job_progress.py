"""job progress, written beside a running job's own transaction

Revision ID: 0110
Revises: 0100
Create Date: 2026-12-01 11:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fupin.migrations import helpers

revision: str = '0110'
down_revision: str | Sequence[str] | None = '0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'job_progress',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('done', sa.BigInteger(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_job_progress')),
    )
    helpers.enable_area_rls('job_progress')


def downgrade() -> None:
    helpers.disable_area_rls('job_progress')
    op.drop_table('job_progress')
