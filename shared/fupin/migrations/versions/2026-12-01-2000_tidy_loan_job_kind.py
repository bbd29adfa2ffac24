"""job kinds named domain.verb: `loans.mark_overdue` becomes `loan.mark_overdue` (issue 15)

Every other kind names its domain in the singular (`subsidy.*`, `dividend.*`, `bank.*`, `assessment.*`,
`audit.*`); the worker's table (fupin_worker.kinds) now uses `loan.mark_overdue`, so the stored runs are
renamed with it: their kind, and their key, which starts with the kind (`loans.mark_overdue:2026-11-30`).
Renamed keys keep a day's run unique, so a day that already ran is not run again under the new name.

Revision ID: tidy0100
Revises: citus0120
Create Date: 2026-12-01 20:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'tidy0100'
down_revision: str | Sequence[str] | None = 'citus0120'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = 'loans.mark_overdue', 'loan.mark_overdue'


def _rename(old: str, new: str) -> None:
    op.execute(f"UPDATE job_progress SET key = '{new}' || substr(key, {len(old) + 1}) WHERE key LIKE '{old}:%'")
    op.execute(f"UPDATE job_run SET kind = '{new}', key = '{new}' || substr(key, {len(old) + 1}) "
               f"WHERE kind = '{old}'")
    op.execute(f"UPDATE job_run SET waiting_for = '{new}' || substr(waiting_for, {len(old) + 1}) "
               f"WHERE waiting_for LIKE '{old}:%'")


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)
