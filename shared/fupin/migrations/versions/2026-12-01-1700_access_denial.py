"""access_denial: refused requests (403, scoped 404, failed logins and bank signatures, 429), collapsed

One row per (county, actor, method, route, code, minute) with a count, upserted by the request that was
refused (see `fupin.audit.denials` for why this is not `audit_event`). Keyed by county first so that on
Citus it is distributed like `audit_event`; row-level security like every area-owned table.

Revision ID: trustb0100
Revises: m0100
Create Date: 2026-12-01 17:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from fupin.migrations import helpers

revision: str = 'trustb0100'
down_revision: str | Sequence[str] | None = 'm0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'access_denial',
        sa.Column('county_code', sa.String(length=6), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('method', sa.String(length=8), nullable=False),
        sa.Column('route', sa.String(length=200), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.SmallInteger(), nullable=False),
        sa.Column('actor_id', postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column('actor_name', sa.String(length=80), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('object_ids', postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column('client_addrs', postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('county_code', 'actor', 'method', 'route', 'code', 'window_start',
                                name=op.f('pk_access_denial')),
    )
    # The reading route: an area's denials, newest first.
    op.create_index('ix_access_denial_area_code_window_start', 'access_denial', ['area_code', 'window_start'])
    helpers.enable_area_rls('access_denial')
    # Counts only grow; a denial trail that the app could delete would not be one.
    op.execute(f"REVOKE DELETE, TRUNCATE ON access_denial FROM {helpers.app_role()}")


def downgrade() -> None:
    helpers.disable_area_rls('access_denial')
    op.drop_index('ix_access_denial_area_code_window_start', table_name='access_denial')
    op.drop_table('access_denial')
