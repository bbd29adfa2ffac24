"""trust: row-level security on every area-owned or sensitive table; bank secrets encrypted at rest (issue 18)

- ledger_account, journal_entry, journal_line: area-scoped. Lines carry their account's area (set by
  `fupin_ledger_post_lines`), an entry the smallest area holding all its accounts. County-level rows
  (code ending in 000000) are shared with the whole county: a township allocates from the county's
  appropriation, so its transaction must see (and post to) that county account.
- app_user: visible and writable only under `fupin.user_scope`, which the API sets to the caller's area
  for user administrators (county admin, auditor) and workers/CLI set to every area. Login reads and
  updates exactly the named row (`fupin.login`, set by `auth.service.authenticate` for the submitted
  name); token checks and cadre links read through `fupin_user_auth(id)`, a SECURITY DEFINER function
  that returns no password hash.
- bank_client, bank_client_secret: area-scoped; a bank request is authenticated before any scope exists,
  through `fupin_bank_credentials(client, now)` (SECURITY DEFINER: the client and its valid, encrypted
  secrets, nothing else). Secrets are AES-GCM ciphertext under `bank_secret_key` (`fupin.secretbox`).
- subsidy_policy, loan_product_rule, project_setting: county directories, readable in the whole county,
  writable in scope; loan_township_readiness: readable by the township's villages, writable in scope.

Every policy compares the row's own area column with a per-transaction setting: no per-row lookup in
another table, so each table stays distributable by county.

Revision ID: trusta0100
Revises: trustb0100
Create Date: 2026-12-01 17:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fupin import secretbox
from fupin.migrations import helpers
from fupin.settings import DEV_ENVIRONMENTS, InsecureSettings, get_settings, insecure_keys

revision: str = 'trusta0100'
down_revision: str | Sequence[str] | None = 'trustb0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE = "current_setting('fupin.scope', true)"
IN_SCOPE = f"area_code LIKE {SCOPE}"
# The row is the county itself (xxxxxx000000) and the caller works somewhere in that county.
COUNTY_ROW = f"(substr(area_code, 7) = '000000' AND {SCOPE} LIKE substr(area_code, 1, 6) || '%')"
LEDGER = f"{IN_SCOPE} OR {COUNTY_ROW}"
LEDGER_TABLES = ("ledger_account", "journal_entry", "journal_line")
ACTIONS = ("read", "insert", "update", "delete")

COMMON_AREA = """
CREATE FUNCTION fupin_common_area(codes text[]) RETURNS varchar LANGUAGE sql IMMUTABLE AS $$
  -- The smallest area holding every code: the longest common prefix of the lowest and highest code,
  -- cut to a level width (2, 4, 6, 9, 12 digits) and padded back to 12 digits.
  SELECT rpad(left(lo, (SELECT max(w) FROM unnest(ARRAY[0, 2, 4, 6, 9, 12]) w WHERE left(lo, w) = left(hi, w))),
              12, '0')
  FROM (SELECT min(c) AS lo, max(c) AS hi FROM unnest(codes) c) m
$$"""

POST_LINES = """
CREATE OR REPLACE FUNCTION fupin_ledger_post_lines(p_entry uuid[], p_account uuid[], p_debit numeric[],
                                                   p_credit numeric[])
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  n bigint;
  unbalanced bigint;
BEGIN
  -- Each line takes its account's area (RLS on journal_line). An account the caller's scope cannot
  -- see yields no line, and the count check below refuses the call.
  WITH new AS (
    INSERT INTO journal_line (entry_id, account_id, debit, credit, area_code)
    SELECT u.e, u.a, u.d, u.c, acc.area_code
    FROM unnest(p_entry, p_account, p_debit, p_credit) AS u(e, a, d, c) JOIN ledger_account acc ON acc.id = u.a
    RETURNING entry_id, account_id, debit, credit
  ), moved AS (
    UPDATE ledger_account a SET balance = a.balance + s.delta
    FROM (SELECT account_id, sum(debit - credit) AS delta FROM new GROUP BY account_id) s
    WHERE a.id = s.account_id
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM new),
         (SELECT count(*) FROM (SELECT entry_id FROM new GROUP BY entry_id HAVING sum(debit) <> sum(credit)) u)
    INTO n, unbalanced;
  IF n <> coalesce(cardinality(p_entry), 0) THEN
    RAISE EXCEPTION 'unknown ledger account' USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF unbalanced > 0 THEN
    RAISE EXCEPTION 'unbalanced journal entry' USING ERRCODE = 'check_violation';
  END IF;
  RETURN n;
END $$"""

POST_LINES_OLD = """
CREATE OR REPLACE FUNCTION fupin_ledger_post_lines(p_entry uuid[], p_account uuid[], p_debit numeric[],
                                                   p_credit numeric[])
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  n bigint;
  unbalanced bigint;
BEGIN
  WITH new AS (
    INSERT INTO journal_line (entry_id, account_id, debit, credit)
    SELECT * FROM unnest(p_entry, p_account, p_debit, p_credit)
    RETURNING entry_id, account_id, debit, credit
  ), moved AS (
    UPDATE ledger_account a SET balance = a.balance + s.delta
    FROM (SELECT account_id, sum(debit - credit) AS delta FROM new GROUP BY account_id) s
    WHERE a.id = s.account_id
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM new),
         (SELECT count(*) FROM (SELECT entry_id FROM new GROUP BY entry_id HAVING sum(debit) <> sum(credit)) u)
    INTO n, unbalanced;
  IF unbalanced > 0 THEN
    RAISE EXCEPTION 'unbalanced journal entry' USING ERRCODE = 'check_violation';
  END IF;
  RETURN n;
END $$"""

# SET clauses: inside these functions the policies see every area, whoever owns the tables (a
# superuser or a plain owner under FORCE ROW LEVEL SECURITY); the caller's settings come back after.
USER_AUTH = """
CREATE FUNCTION fupin_user_auth(p_id uuid)
RETURNS TABLE (username varchar, role varchar, area_code varchar, active boolean, token_version integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public SET fupin.user_scope = '%' AS $$
  SELECT u.username, u.role, u.area_code, u.active, u.token_version FROM app_user u WHERE u.id = p_id
$$"""

BANK_CREDENTIALS = """
CREATE FUNCTION fupin_bank_credentials(p_client varchar, p_now timestamptz)
RETURNS TABLE (institution_code varchar, area_code varchar, active boolean, secrets varchar[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public SET fupin.scope = '%' AS $$
  SELECT c.institution_code, c.area_code, c.active,
         ARRAY(SELECT s.secret FROM bank_client_secret s
               WHERE s.client_id = c.client_id AND s.valid_from <= p_now
                 AND (s.valid_until IS NULL OR s.valid_until > p_now) ORDER BY s.valid_from DESC)
  FROM bank_client c WHERE c.client_id = p_client
$$"""


def _force(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def _policies(table: str, *, read: str, write: str) -> None:
    op.execute(f"CREATE POLICY {table}_area_read ON {table} FOR SELECT USING ({read})")
    op.execute(f"CREATE POLICY {table}_area_insert ON {table} FOR INSERT WITH CHECK ({write})")
    op.execute(f"CREATE POLICY {table}_area_update ON {table} FOR UPDATE USING ({write}) WITH CHECK ({write})")
    op.execute(f"CREATE POLICY {table}_area_delete ON {table} FOR DELETE USING ({write})")


def _unforce(table: str) -> None:
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def _drop_policies(table: str, names: Sequence[str]) -> None:
    for name in names:
        op.execute(f"DROP POLICY IF EXISTS {table}_{name} ON {table}")


def upgrade() -> None:
    role = helpers.app_role()

    # -- ledger -----------------------------------------------------------------------------------
    op.execute(COMMON_AREA)
    op.add_column('journal_line', sa.Column('area_code', sa.String(length=12), nullable=True))
    op.add_column('journal_entry', sa.Column('area_code', sa.String(length=12), nullable=True))
    # Append-only tables: their trigger refuses the one-time backfill, so it is off for that moment.
    for table in ("journal_line", "journal_entry"):
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    op.execute("UPDATE journal_line l SET area_code = a.area_code FROM ledger_account a WHERE a.id = l.account_id")
    op.execute(
        "UPDATE journal_entry e SET area_code = coalesce(("
        "SELECT fupin_common_area(array_agg(l.area_code::text)) FROM journal_line l WHERE l.entry_id = e.id"
        "), '000000000000')"
    )
    for table in ("journal_line", "journal_entry"):
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
    op.alter_column('journal_line', 'area_code', nullable=False)
    op.alter_column('journal_entry', 'area_code', nullable=False)
    op.create_index('ix_journal_line_area_code', 'journal_line', ['area_code'])
    op.create_index('ix_journal_entry_area_code', 'journal_entry', ['area_code'])
    op.execute(POST_LINES)
    for table in LEDGER_TABLES:
        _force(table)
        _policies(table, read=LEDGER, write=LEDGER)

    # -- users ------------------------------------------------------------------------------------
    _force("app_user")
    admin = "area_code LIKE current_setting('fupin.user_scope', true)"
    login = "username = current_setting('fupin.login', true)"
    _policies("app_user", read=admin, write=admin)
    op.execute(f"CREATE POLICY app_user_login_read ON app_user FOR SELECT USING ({login})")
    op.execute(f"CREATE POLICY app_user_login_update ON app_user FOR UPDATE USING ({login}) WITH CHECK ({login})")
    op.execute(USER_AUTH)
    op.execute("REVOKE ALL ON FUNCTION fupin_user_auth(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION fupin_user_auth(uuid) TO {role}")

    # -- bank clients and their secrets -----------------------------------------------------------
    op.add_column('bank_client_secret', sa.Column('area_code', sa.String(length=12), nullable=True))
    op.execute("UPDATE bank_client_secret s SET area_code = c.area_code FROM bank_client c WHERE c.client_id = s.client_id")
    op.alter_column('bank_client_secret', 'area_code', nullable=False)
    _encrypt_secrets()
    for table in ("bank_client", "bank_client_secret"):
        _force(table)
        _policies(table, read=IN_SCOPE, write=IN_SCOPE)
    op.execute(BANK_CREDENTIALS)
    op.execute("REVOKE ALL ON FUNCTION fupin_bank_credentials(varchar, timestamptz) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION fupin_bank_credentials(varchar, timestamptz) TO {role}")

    # -- county directories and township settings --------------------------------------------------
    for table, column in (("subsidy_policy", "area_code"), ("loan_product_rule", "county_code"),
                          ("project_setting", "area_code")):
        _force(table)
        own = f"{column} LIKE {SCOPE}"
        _policies(table, read=f"{own} OR {SCOPE} LIKE substr({column}, 1, 6) || '%'", write=own)
    _force("loan_township_readiness")
    # A township's row is read by its villages' applications (the township prefix is 9 digits).
    _policies("loan_township_readiness", read=f"{IN_SCOPE} OR {SCOPE} LIKE substr(area_code, 1, 9) || '%'",
              write=IN_SCOPE)


def _encrypt_secrets() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, client_id, secret FROM bank_client_secret")).all()
    settings = get_settings()
    weak = [p for p in insecure_keys(settings) if p.startswith("FUPIN_BANK_SECRET_KEY")]
    if rows and weak and settings.environment not in DEV_ENVIRONMENTS:
        # Encrypting real secrets under the public default key would only look like protection.
        raise InsecureSettings(f"the migration refuses to encrypt bank secrets: {weak[0]}")
    key = settings.bank_secret_key
    for id_, client_id, secret in rows:
        if not secretbox.is_sealed(secret):
            bind.execute(sa.text("UPDATE bank_client_secret SET secret = :s WHERE id = :i"),
                         {"s": secretbox.seal(secret, client_id=client_id, key=key), "i": id_})


def _decrypt_secrets(key: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, client_id, secret FROM bank_client_secret")).all()
    for id_, client_id, secret in rows:
        if secretbox.is_sealed(secret):
            bind.execute(sa.text("UPDATE bank_client_secret SET secret = :s WHERE id = :i"),
                         {"s": secretbox.unseal(secret, client_id=client_id, key=key), "i": id_})


def downgrade() -> None:
    for table in ("subsidy_policy", "loan_product_rule", "project_setting", "loan_township_readiness",
                  "bank_client", "bank_client_secret", *LEDGER_TABLES):
        _drop_policies(table, [f"area_{a}" for a in ACTIONS])
        _unforce(table)
    op.execute("DROP FUNCTION IF EXISTS fupin_bank_credentials(varchar, timestamptz)")
    _decrypt_secrets(get_settings().bank_secret_key)
    op.drop_column('bank_client_secret', 'area_code')
    _drop_policies("app_user", [*(f"area_{a}" for a in ACTIONS), "login_read", "login_update"])
    _unforce("app_user")
    op.execute("DROP FUNCTION IF EXISTS fupin_user_auth(uuid)")
    op.execute(POST_LINES_OLD)
    op.drop_index('ix_journal_entry_area_code', table_name='journal_entry')
    op.drop_index('ix_journal_line_area_code', table_name='journal_line')
    op.drop_column('journal_entry', 'area_code')
    op.drop_column('journal_line', 'area_code')
    op.execute("DROP FUNCTION IF EXISTS fupin_common_area(text[])")
