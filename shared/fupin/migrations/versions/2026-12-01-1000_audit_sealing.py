"""audit sealed in batches per county chain, signed checkpoints; no lock on the write path

Revision ID: 0090
Revises: 0080
Create Date: 2026-12-01 10:00:00

Writers insert audit rows with no chain fields (no lock, no read of the previous row). A sealer gives
committed unsealed rows their chain position and hash, per county chain, and writes an HMAC-signed
checkpoint of each chain's head to `audit_checkpoint`, which the app role may only insert into.
Rows chained by the first release are unsealed here and sealed again into their county's chain.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fupin.migrations import helpers

revision: str = '0090'
down_revision: str | Sequence[str] | None = '0080'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT = ("id", "occurred_at", "actor_id", "actor_name", "role", "area_code", "action", "entity", "entity_id",
           "result", "before", "after", "county_code")
# Only the system scope ('%': worker and CLI) reads chain state; no user needs it.
SYSTEM_ONLY = "current_setting('fupin.scope', true) = '%'"


def upgrade() -> None:
    role = helpers.app_role()
    helpers.drop_append_only("audit_event")
    op.add_column('audit_event', sa.Column('county_code', sa.String(length=6), server_default='', nullable=False))
    op.add_column('audit_event', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('audit_event', sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=True))
    op.alter_column('audit_event', 'prev_hash', nullable=True)
    op.alter_column('audit_event', 'hash', nullable=True)
    op.execute("UPDATE audit_event SET county_code = left(area_code, 6), prev_hash = NULL, hash = NULL")
    op.alter_column('audit_event', 'county_code', server_default=None)
    op.drop_constraint('uq_audit_event_hash', 'audit_event', type_='unique')
    op.create_unique_constraint('uq_audit_event_county_code_seq', 'audit_event', ['county_code', 'seq'])
    op.create_index('ix_audit_event_unsealed', 'audit_event', ['county_code', 'id'],
                    postgresql_where=sa.text('seq IS NULL'))
    # Sealing may fill in the chain fields once; nothing else about a row may ever change.
    unchanged = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in CONTENT)
    op.execute(f"""CREATE FUNCTION fupin_audit_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {unchanged} THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'audit rows are append-only; only sealing may fill in seq and hash'
            USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("CREATE TRIGGER audit_event_seal_only BEFORE UPDATE OR DELETE ON audit_event "
               "FOR EACH ROW EXECUTE FUNCTION fupin_audit_seal_only()")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM {role}")
    op.execute(f"GRANT UPDATE (seq, prev_hash, hash, sealed_at) ON audit_event TO {role}")
    helpers.enable_area_rls('audit_event')

    op.create_table(
        'audit_chain_head',
        sa.Column('county_code', sa.String(length=6), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('county_code', name=op.f('pk_audit_chain_head')),
    )
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('county_code', sa.String(length=6), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('key_id', sa.String(length=16), nullable=False),
        sa.Column('signature', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('county_code', 'id', name=op.f('pk_audit_checkpoint')),
    )
    op.create_index('ix_audit_checkpoint_county_code_seq', 'audit_checkpoint', ['county_code', 'seq'])
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoint FROM {role}")
    op.execute("CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint "
               "FOR EACH ROW EXECUTE FUNCTION fupin_refuse_change()")
    op.execute(f"REVOKE DELETE, TRUNCATE ON audit_chain_head FROM {role}")
    for table in ('audit_chain_head', 'audit_checkpoint'):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_system_only ON {table} USING ({SYSTEM_ONLY}) WITH CHECK ({SYSTEM_ONLY})")


def downgrade() -> None:
    role = helpers.app_role()
    op.drop_table('audit_checkpoint')
    op.drop_table('audit_chain_head')
    helpers.disable_area_rls('audit_event')
    op.execute("DROP TRIGGER IF EXISTS audit_event_seal_only ON audit_event")
    op.execute("DROP FUNCTION IF EXISTS fupin_audit_seal_only()")
    op.execute(f"REVOKE UPDATE (seq, prev_hash, hash, sealed_at) ON audit_event FROM {role}")
    op.drop_index('ix_audit_event_unsealed', table_name='audit_event')
    op.drop_constraint('uq_audit_event_county_code_seq', 'audit_event', type_='unique')
    # The first release's global chain cannot be rebuilt here: rows get placeholder chain fields, and
    # `fupin verify-audit` of that release will report the chain as needing a reseal.
    op.execute("UPDATE audit_event SET prev_hash = coalesce(prev_hash, repeat('0', 64)), "
               "hash = coalesce(hash, md5(id::text) || md5(id::text || 'x'))")
    op.alter_column('audit_event', 'hash', nullable=False)
    op.alter_column('audit_event', 'prev_hash', nullable=False)
    op.create_unique_constraint('uq_audit_event_hash', 'audit_event', ['hash'])
    op.drop_column('audit_event', 'sealed_at')
    op.drop_column('audit_event', 'seq')
    op.drop_column('audit_event', 'county_code')
    helpers.make_append_only('audit_event')
