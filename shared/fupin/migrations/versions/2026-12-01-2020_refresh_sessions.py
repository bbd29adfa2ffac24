"""refresh sessions: rotating, revocable refresh tokens (issue 14)

One row per login (a refresh-token family): the SHA-256 of the current secret, the generation, the user's
token_version at login, expiry and revocation. Row-level security, forced like every table:

- `area_code LIKE fupin.scope`: the user (logout), its user administrators (revocation on password change
  or deactivation, in their area) and system actors (`%`);
- `id = fupin.refresh_session`: a refresh or logout request has no scope yet; it presents the token, whose
  first part names the row, and the transaction sees and updates exactly that row, like login's
  `fupin.login` on app_user. The secret is then compared with the stored hash in Python.

Revision ID: api0100
Revises: ledger0100
Create Date: 2026-12-01 20:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'api0100'
down_revision: str | Sequence[str] | None = 'ledger0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_SCOPE = "area_code LIKE current_setting('fupin.scope', true)"
PRESENTED = "id::text = current_setting('fupin.refresh_session', true)"


def upgrade() -> None:
    op.create_table(
        'refresh_session',
        sa.Column('id', postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column('user_id', postgresql.UUID(as_uuid=True),
                  sa.ForeignKey('app_user.id', name='fk_refresh_session_user_id_app_user', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('area_code', sa.String(12), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('token_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_reason', sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_refresh_session'),
    )
    op.create_index('ix_refresh_session_user_id', 'refresh_session', ['user_id'])
    op.create_index('ix_refresh_session_area_code', 'refresh_session', ['area_code'])
    op.execute("ALTER TABLE refresh_session ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE refresh_session FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY refresh_session_area_scope ON refresh_session USING ({IN_SCOPE}) WITH CHECK ({IN_SCOPE})")
    op.execute(f"CREATE POLICY refresh_session_presented_read ON refresh_session FOR SELECT USING ({PRESENTED})")
    op.execute(f"CREATE POLICY refresh_session_presented_update ON refresh_session FOR UPDATE "
               f"USING ({PRESENTED}) WITH CHECK ({PRESENTED})")


def downgrade() -> None:
    op.drop_table('refresh_session')
