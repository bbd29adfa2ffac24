"""idempotency keys: the stored first answer of a write, per caller and key

Revision ID: field0100
Revises: trusta0100
Create Date: 2026-12-01 18:00:00

The caller's area leads the primary key (RLS, and the distribution column on Citus); expiry is served
by its own index for the worker's purge.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from fupin.migrations import helpers

revision: str = 'field0100'
down_revision: str | Sequence[str] | None = 'trusta0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'idempotency_key',
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('caller', sa.String(length=80), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('method', sa.String(length=8), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('area_code', 'caller', 'key', name=op.f('pk_idempotency_key')),
    )
    op.create_index('ix_idempotency_key_expires_at', 'idempotency_key', ['expires_at'])
    helpers.enable_area_rls('idempotency_key')


def downgrade() -> None:
    helpers.disable_area_rls('idempotency_key')
    op.drop_index('ix_idempotency_key_expires_at', table_name='idempotency_key')
    op.drop_table('idempotency_key')
