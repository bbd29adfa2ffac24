"""fupin_member_id_owners in PL/pgSQL: Citus cannot plan a parameterised SQL-language function (issue 16)

"could not create distributed plan … parameters in SQL functions" on a coordinator; a PL/pgSQL body is
planned per statement and works on both deployments, with the same result.

Revision ID: citus0110
Revises: citus0100
Create Date: 2026-12-01 17:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'citus0110'
down_revision: str | Sequence[str] | None = 'citus0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS fupin_member_id_owners(text[])")
    op.execute(
        """CREATE FUNCTION fupin_member_id_owners(ids text[])
        RETURNS TABLE (id_number text, household_id uuid, area_code text)
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET fupin.scope = '%' AS $$
        BEGIN
          RETURN QUERY SELECT m.id_number::text, m.household_id, m.area_code::text
          FROM household_member m WHERE m.active AND m.id_number = ANY(ids);
        END $$"""
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS fupin_member_id_owners(text[])")
    op.execute(
        """CREATE FUNCTION fupin_member_id_owners(ids text[])
        RETURNS TABLE (id_number text, household_id uuid, area_code text)
        LANGUAGE sql STABLE SECURITY DEFINER SET fupin.scope = '%' AS $$
          SELECT m.id_number::text, m.household_id, m.area_code::text
          FROM household_member m WHERE m.active AND m.id_number = ANY(ids)
        $$"""
    )
