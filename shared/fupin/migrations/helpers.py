"""SQL the migrations share: the app role, row-level security, append-only tables."""

from __future__ import annotations

from alembic import op

from fupin.settings import get_settings


def app_role() -> str:
    role = get_settings().db_app_role
    if not role.replace("_", "").isalnum():
        raise ValueError("db_app_role must be an identifier")
    return role


def enable_area_rls(table: str, column: str = "area_code") -> None:
    """Second wall behind the query filters: rows outside `fupin.scope` (set per transaction) are invisible.

    An unset scope is NULL or '' and matches nothing, so a forgotten scope denies rather than leaks.
    """
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    cond = f"{column} LIKE current_setting('fupin.scope', true)"
    op.execute(f"CREATE POLICY {table}_area_scope ON {table} USING ({cond}) WITH CHECK ({cond})")


def disable_area_rls(table: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS {table}_area_scope ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def make_append_only(table: str) -> None:
    """No UPDATE or DELETE for the app role, and a trigger that refuses them for everyone else."""
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {app_role()}")
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION fupin_refuse_change()"
    )


def drop_append_only(table: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
