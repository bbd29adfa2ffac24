"""foundation

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 10:41:58.522168
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from fupin.migrations import helpers

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    role = helpers.app_role()
    # The app connects as a login role that owns nothing, so row-level security applies to it.
    op.execute(
        f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF;
        END $$"""
    )
    password = helpers.get_settings().db_app_password
    if password:
        op.execute(sa.text(f"ALTER ROLE {role} PASSWORD :p").bindparams(p=password))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")
    op.execute(
        """CREATE FUNCTION fupin_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$"""
    )
    op.create_table('app_user',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('area_code', sa.String(length=12), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('token_version', sa.Integer(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_index(op.f('ix_app_user_area_code'), 'app_user', ['area_code'], unique=False)
    op.create_table('area',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('population', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{12}$'", name=op.f('ck_area_code_digits')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_area'))
    )
    op.create_index(op.f('ix_area_level'), 'area', ['level'], unique=False)
    op.create_index(op.f('ix_area_parent_code'), 'area', ['parent_code'], unique=False)
    op.create_table('audit_event',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('actor_name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('area_code', sa.String(length=12), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_event_hash'))
    )
    op.create_index(op.f('ix_audit_event_area_code'), 'audit_event', ['area_code'], unique=False)
    op.create_index(op.f('ix_audit_event_entity'), 'audit_event', ['entity'], unique=False)
    op.create_index(op.f('ix_audit_event_entity_id'), 'audit_event', ['entity_id'], unique=False)
    op.create_table('job_run',
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('args', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('enqueues', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_run')),
    sa.UniqueConstraint('key', name=op.f('uq_job_run_key'))
    )
    op.create_index(op.f('ix_job_run_kind'), 'job_run', ['kind'], unique=False)
    op.create_index(op.f('ix_job_run_status'), 'job_run', ['status'], unique=False)
    # ### end Alembic commands ###
    helpers.make_append_only("audit_event")


def downgrade() -> None:
    role = helpers.app_role()
    helpers.drop_append_only("audit_event")
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(op.f('ix_job_run_status'), table_name='job_run')
    op.drop_index(op.f('ix_job_run_kind'), table_name='job_run')
    op.drop_table('job_run')
    op.drop_index(op.f('ix_audit_event_entity_id'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_entity'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_area_code'), table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_index(op.f('ix_area_parent_code'), table_name='area')
    op.drop_index(op.f('ix_area_level'), table_name='area')
    op.drop_table('area')
    op.drop_index(op.f('ix_app_user_area_code'), table_name='app_user')
    op.drop_table('app_user')
    # ### end Alembic commands ###
    op.execute("DROP FUNCTION IF EXISTS fupin_refuse_change()")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {role}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
