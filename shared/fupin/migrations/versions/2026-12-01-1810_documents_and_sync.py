"""documents and offline sync: the household archive's files, the county's required list, village
locations, and the phone's timestamp on synced visits and measures

Revision ID: field0110
Revises: field0100
Create Date: 2026-12-01 18:10:00

`document`, `village_location` are area-owned (RLS by area). `archive_requirement` is a county directory
(readable from the county and every township and village in it, writable within the caller's scope), like
the monitoring policies.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from fupin.migrations import helpers

revision: str = 'field0110'
down_revision: str | Sequence[str] | None = 'field0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIRECTORY_ACTIONS = ("read", "insert", "update", "delete")


def _enable_directory_rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    read = (
        "area_code LIKE current_setting('fupin.scope', true) "
        "OR current_setting('fupin.scope', true) LIKE substr(area_code, 1, 6) || '%'"
    )
    write = "area_code LIKE current_setting('fupin.scope', true)"
    op.execute(f"CREATE POLICY {table}_area_read ON {table} FOR SELECT USING ({read})")
    op.execute(f"CREATE POLICY {table}_area_insert ON {table} FOR INSERT WITH CHECK ({write})")
    op.execute(f"CREATE POLICY {table}_area_update ON {table} FOR UPDATE USING ({write}) WITH CHECK ({write})")
    op.execute(f"CREATE POLICY {table}_area_delete ON {table} FOR DELETE USING ({write})")


def upgrade() -> None:
    op.add_column('visit', sa.Column('client_recorded_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('help_measure', sa.Column('client_recorded_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'document',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('target_type', sa.String(length=20), nullable=False),
        sa.Column('target_id', sa.UUID(), nullable=True),
        sa.Column('household_id', sa.UUID(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('media_type', sa.String(length=40), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('thumbnail_sha256', sa.String(length=64), nullable=True),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('latitude', sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column('longitude', sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column('flags', postgresql.ARRAY(sa.String(length=32)), server_default='{}', nullable=False),
        sa.Column('client_id', sa.UUID(), nullable=True),
        sa.Column('uploaded_by', sa.UUID(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document')),
    )
    op.create_index('ix_document_area_code', 'document', ['area_code'])
    op.create_index('ix_document_household_id', 'document', ['household_id'])
    op.create_index('ix_document_target', 'document', ['target_type', 'target_id'])
    op.create_index('uq_document_target_sha256_kind', 'document', ['target_type', 'target_id', 'sha256', 'kind'],
                    unique=True, postgresql_where=sa.text('target_id IS NOT NULL'))
    op.create_index('ix_document_unattached', 'document', ['uploaded_by', 'sha256'],
                    postgresql_where=sa.text('target_id IS NULL'))
    op.create_index('ix_document_flagged', 'document', ['area_code'], postgresql_where=sa.text("flags <> '{}'"))
    helpers.enable_area_rls('document')
    op.create_table(
        'archive_requirement',
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('area_code', 'kind', name=op.f('pk_archive_requirement')),
    )
    _enable_directory_rls('archive_requirement')
    op.create_table(
        'village_location',
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('latitude', sa.Numeric(precision=9, scale=6), nullable=False),
        sa.Column('longitude', sa.Numeric(precision=9, scale=6), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('area_code', name=op.f('pk_village_location')),
    )
    helpers.enable_area_rls('village_location')


def downgrade() -> None:
    helpers.disable_area_rls('village_location')
    op.drop_table('village_location')
    for action in DIRECTORY_ACTIONS:
        op.execute(f"DROP POLICY IF EXISTS archive_requirement_area_{action} ON archive_requirement")
    op.drop_table('archive_requirement')
    helpers.disable_area_rls('document')
    op.drop_table('document')
    op.drop_column('help_measure', 'client_recorded_at')
    op.drop_column('visit', 'client_recorded_at')
