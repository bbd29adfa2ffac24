"""perf: the ledger posts lines through one function instead of a statement trigger (issue 13)

The statement trigger on journal_line re-read journal_line for every firing (500 firings in a 1M-loan
settlement) and is refused on Citus distributed tables (issue 16). `fupin_ledger_post_lines` inserts the
lines it is given, checks the balance of each entry from exactly those new rows, and moves the account
balances, in one statement; the app role may only call it (no INSERT on journal_line, no UPDATE of
balances), so an unbalanced entry is still refused by the database, past any service.

Revision ID: p0100
Revises: o0100
Create Date: 2026-12-01 16:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from fupin.migrations import helpers

revision: str = 'p0100'
down_revision: str | Sequence[str] | None = 'o0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POST_LINES = """
CREATE FUNCTION fupin_ledger_post_lines(p_entry uuid[], p_account uuid[], p_debit numeric[], p_credit numeric[])
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

# 0030's trigger function (LATERAL per-entry check), restored by the downgrade.
APPLY_INDEXED = """CREATE FUNCTION fupin_ledger_apply() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM (SELECT DISTINCT entry_id FROM new_lines) n
    CROSS JOIN LATERAL (
      SELECT sum(l.debit) AS d, sum(l.credit) AS c FROM journal_line l WHERE l.entry_id = n.entry_id
    ) s
    WHERE s.d <> s.c
  ) THEN
    RAISE EXCEPTION 'unbalanced journal entry' USING ERRCODE = 'check_violation';
  END IF;
  UPDATE ledger_account a SET balance = a.balance + s.delta
  FROM (SELECT account_id, sum(debit - credit) AS delta FROM new_lines GROUP BY account_id) s
  WHERE a.id = s.account_id;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    role = helpers.app_role()
    op.execute("DROP TRIGGER IF EXISTS journal_line_apply ON journal_line")
    op.execute("DROP FUNCTION IF EXISTS fupin_ledger_apply()")
    op.execute(POST_LINES)
    op.execute("REVOKE ALL ON FUNCTION fupin_ledger_post_lines(uuid[], uuid[], numeric[], numeric[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION fupin_ledger_post_lines(uuid[], uuid[], numeric[], numeric[]) TO {role}")
    op.execute(f"REVOKE INSERT ON journal_line FROM {role}")


def downgrade() -> None:
    role = helpers.app_role()
    op.execute(f"GRANT INSERT ON journal_line TO {role}")
    op.execute("DROP FUNCTION IF EXISTS fupin_ledger_post_lines(uuid[], uuid[], numeric[], numeric[])")
    op.execute(APPLY_INDEXED)
    op.execute(
        "CREATE TRIGGER journal_line_apply AFTER INSERT ON journal_line REFERENCING NEW TABLE AS new_lines "
        "FOR EACH STATEMENT EXECUTE FUNCTION fupin_ledger_apply()"
    )
