"""bank batches: staged lines, evaluated events and per-event results for bulk posts and daily files

Revision ID: 0100
Revises: 0090
Create Date: 2026-12-01 11:00:00

A bulk request or a bank's daily file becomes a `bank_batch` whose lines are staged (COPY for files),
parsed and evaluated set-based in PostgreSQL (`bank_batch_event`, unlogged working rows), applied with
a handful of INSERT … SELECT / UPDATE … FROM statements, and answered per line (`bank_batch_result`).
The idempotency hash of an event becomes PostgreSQL's canonical text of its jsonb payload, so that the
same event hashes alike whether it arrives as JSON, a JSON line or a CSV row.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from fupin.migrations import helpers

revision: str = '0100'
down_revision: str | Sequence[str] | None = '0090'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("bank_batch", "bank_batch_line", "bank_batch_event", "bank_batch_result")


def upgrade() -> None:
    op.create_table(
        'bank_batch',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('format', sa.String(length=8), nullable=False),
        sa.Column('columns', postgresql.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('bytes', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('lines', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('job_key', sa.String(length=200), nullable=True),
        sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['bank_client.client_id'], name=op.f('fk_bank_batch_client_id_bank_client')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_batch')),
    )
    op.create_index('ix_bank_batch_client_id_received_at', 'bank_batch', ['client_id', 'received_at'])
    op.create_table(
        'bank_batch_line',
        sa.Column('batch_id', sa.UUID(), nullable=False),
        sa.Column('line_no', sa.Integer(), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('raw', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['bank_batch.id'], name=op.f('fk_bank_batch_line_batch_id_bank_batch'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('batch_id', 'line_no', name=op.f('pk_bank_batch_line')),
    )
    # Working rows of one evaluation, rebuilt from the lines if lost: unlogged, so no WAL is written for them.
    op.create_table(
        'bank_batch_event',
        sa.Column('batch_id', sa.UUID(), nullable=False),
        sa.Column('line_no', sa.Integer(), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('body_hash', sa.String(length=64), nullable=True),
        sa.Column('event_id', sa.Text(), nullable=True),
        sa.Column('kind', sa.Text(), nullable=True),
        sa.Column('application_id', sa.UUID(), nullable=True),
        sa.Column('external_id', sa.Text(), nullable=True),
        sa.Column('amount', sa.Numeric(14, 2), nullable=True),
        sa.Column('on_date', sa.Date(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('rate', sa.Numeric(9, 6), nullable=True),
        sa.Column('reverses_event_id', sa.Text(), nullable=True),
        sa.Column('target_application_id', sa.UUID(), nullable=True),
        sa.Column('loan_id', sa.UUID(), nullable=True),
        sa.Column('sequential', sa.Boolean(), nullable=False, server_default='false'),
        sa.Column('status', sa.String(length=16), nullable=True),
        sa.Column('http_status', sa.SmallInteger(), nullable=True),
        sa.Column('code', sa.String(length=64), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('batch_id', 'line_no', name=op.f('pk_bank_batch_event')),
        prefixes=['UNLOGGED'],
    )
    op.create_table(
        'bank_batch_result',
        sa.Column('batch_id', sa.UUID(), nullable=False),
        sa.Column('line_no', sa.Integer(), nullable=False),
        sa.Column('area_code', sa.String(length=12), nullable=False),
        sa.Column('event_id', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('http_status', sa.SmallInteger(), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('loan_id', sa.UUID(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['bank_batch.id'], name=op.f('fk_bank_batch_result_batch_id_bank_batch'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('batch_id', 'line_no', name=op.f('pk_bank_batch_result')),
    )
    # Repayments addressed by the bank's own loan number.
    op.create_index('ix_loan_coop_code_external_id', 'loan', ['coop_code', 'external_id'],
                    postgresql_where=sa.text('external_id IS NOT NULL'))
    for table in TABLES:
        helpers.enable_area_rls(table)
    op.execute("SET LOCAL fupin.scope = '%'")  # bank_loan_event has row-level security, FORCEd for the owner too
    op.execute("UPDATE bank_loan_event SET body_hash = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')")


def downgrade() -> None:
    for table in TABLES:
        helpers.disable_area_rls(table)
    op.drop_index('ix_loan_coop_code_external_id', table_name='loan')
    op.drop_table('bank_batch_result')
    op.drop_table('bank_batch_event')
    op.drop_table('bank_batch_line')
    op.drop_index('ix_bank_batch_client_id_received_at', table_name='bank_batch')
    op.drop_table('bank_batch')
