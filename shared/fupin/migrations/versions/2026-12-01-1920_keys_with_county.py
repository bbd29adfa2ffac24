"""keys with the county: the upsert targets of distributed tables name the county (issue 16)

Citus needs the distribution column in every unique key, and an `ON CONFLICT (…)` target must name the
columns of one, so these four keys gain `county` on both deployments. Nothing is weakened: in each the
county is already determined by the other columns (`area_code` is in the key; a bank event's area is its
bank client's), so the rule "one event_id per bank" still holds across counties.

Revision ID: citus0120
Revises: citus0110
Create Date: 2026-12-01 17:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = 'citus0120'
down_revision: str | Sequence[str] | None = 'citus0110'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (
    ('bank_loan_event', ('client_id', 'event_id')),
    ('loan_quota', ('area_code', 'year')),
    ('repayment_check', ('job_key', 'area_code')),
    ('quota_proposal', ('area_code', 'year')),
)


def _constraint(table: str, cols: tuple[str, ...]) -> str:
    name = op.get_bind().scalar(text(
        "SELECT c.conname FROM pg_constraint c WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'u' "
        "AND (SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
        "     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) = CAST(:c AS text[])"
    ), {"t": table, "c": list(cols)})
    if name is None:
        raise RuntimeError(f"no unique constraint on {table} ({', '.join(cols)})")
    return str(name)


def upgrade() -> None:
    for table, cols in KEYS:
        name = _constraint(table, cols)
        op.drop_constraint(name, table, type_='unique')
        op.create_unique_constraint(name, table, [*cols, 'county'])


def downgrade() -> None:
    for table, cols in KEYS:
        name = _constraint(table, (*cols, 'county'))
        op.drop_constraint(name, table, type_='unique')
        op.create_unique_constraint(name, table, list(cols))
