"""Set-based SQL of the quarterly cycle. Every rate is a NUMERIC(9,6) value (a policy column or a bind
cast to numeric(9,6)), never a bind typed like the money column it multiplies (perf rule 1).

Statements cover the runs in `:run_ids` (one township's, or all of a county's settlement runs at once):
a county's settlement is a handful of statements whatever its number of townships. Account codes come
from `ledger.account_code_sql`, the SQL twin of `ledger.account_code`."""

from __future__ import annotations

from fupin.ledger.service import account_code_sql

# The runs a statement covers, with their township: `JOIN runs ... ON l.township_code = runs.township`.
RUNS = "SELECT id AS run_id, area_code AS township FROM subsidy_run WHERE id = ANY(CAST(:run_ids AS uuid[]))"

# The policy in force on each loan's disbursement date (or the default when the county has none yet).
POLICY = """
LEFT JOIN LATERAL (
    SELECT p.rate, p.productive_only FROM subsidy_policy p
    WHERE p.area_code = :county AND p.effective_from <= l.disbursed_on
    ORDER BY p.effective_from DESC LIMIT 1
) pol ON true"""

RATE = "COALESCE(pol.rate, CAST(:default_rate AS numeric(9,6)))"
QUALIFIES = "(l.productive OR NOT COALESCE(pol.productive_only, true))"

BUREAU_CODE = account_code_sql("'finance_bureau'", ":county", "'subsidy'")
COOP_CODE = account_code_sql("'credit_coop'", "s.township || '.' || s.coop_code", "'subsidy'")


def payee_code(loan: str) -> str:
    """The account a loan's subsidy is paid into: its household's, or the enterprise loan's own."""
    enterprise = account_code_sql("'enterprise'", f"CAST({loan}.id AS text)", "'subsidy'")
    household = account_code_sql("'household'", f"CAST({loan}.household_id AS text)", "'subsidy'")
    return f"CASE WHEN {loan}.household_id IS NULL THEN {enterprise} ELSE {household} END"


# Expected subsidy per run and coop of household loans falling due in the quarter and not repaid before it.
EXPECTED_BY_COOP = f"""
SELECT runs.run_id, l.coop_code, sum(round(l.principal * (l.due_on - l.disbursed_on) * {RATE} / 365, 2)) AS amount
FROM ({RUNS}) runs JOIN loan l ON l.township_code = runs.township {POLICY}
WHERE l.household_id IS NOT NULL
  AND l.due_on BETWEEN :q_start AND :q_end
  AND (l.repaid_on IS NULL OR l.repaid_on >= :q_start)
  AND {QUALIFIES}
GROUP BY runs.run_id, l.coop_code ORDER BY runs.run_id, l.coop_code"""

# Payouts: every loan of the runs' townships repaid in full, on time, within the quarter; one row per loan.
# principal-days = Σ repayment × (its date − disbursement): disbursement day counted, repayment day not.
INSERT_PAYOUTS = f"""
WITH c AS (
    SELECT runs.run_id, runs.township, l.id, l.area_code, l.household_id, l.enterprise_name, l.coop_code, l.principal,
           l.repaid_on - l.disbursed_on AS days, rp.pd, {RATE} AS rate,
           round(rp.pd * {RATE} / 365, 2) AS amount
    FROM ({RUNS}) runs
    JOIN loan l ON l.township_code = runs.township
    -- LATERAL: each loan's repayments by index, never a scan of every repayment in the province
    CROSS JOIN LATERAL (
        SELECT sum(lr.amount * GREATEST(LEAST(lr.paid_on, l.due_on) - l.disbursed_on, 0)) AS pd
        FROM loan_repayment lr WHERE lr.loan_id = l.id
    ) rp {POLICY}
    WHERE l.repaid_on BETWEEN :q_start AND :q_end
      AND l.repaid_on <= l.due_on AND l.outstanding = 0 AND {QUALIFIES}
)
INSERT INTO subsidy_payout (run_id, loan_id, area_code, county, household_id, enterprise_name, coop_code, principal,
                            days, principal_days, rate, amount, paid_on, source_code, target_code, entry_id)
SELECT s.run_id, s.id, s.area_code, left(s.area_code, 6), s.household_id, s.enterprise_name, s.coop_code, s.principal,
       s.days, s.pd, s.rate, s.amount, :paid_on, s.source_code, s.target_code,
       CAST(md5(CAST(s.run_id AS text) || ':' || s.source_code) AS uuid)
FROM (
    SELECT s.*,
           CASE WHEN s.household_id IS NULL THEN {BUREAU_CODE} ELSE {COOP_CODE} END AS source_code,
           {payee_code("s")} AS target_code
    FROM c s
    WHERE s.amount > 0
) s
-- A loan paid before (by any run) is skipped by its unique key, not by a NOT EXISTS: planned against a
-- table still empty at the quarter's first settlement, NOT EXISTS became a sequential scan per loan of the
-- rows this very statement was inserting (10.4 s for 20 townships instead of ~0.7 s).
ON CONFLICT DO NOTHING"""

# Loans falling due in the quarter and not repaid in full by their due date: they earn nothing.
LATE_LOANS = f"""
SELECT runs.run_id, count(*) FROM ({RUNS}) runs JOIN loan l ON l.township_code = runs.township
WHERE l.due_on BETWEEN :q_start AND :q_end
  AND (l.repaid_on IS NULL OR l.repaid_on > l.due_on)
GROUP BY runs.run_id"""

# Accounts for ledger.open_accounts_from: the payees of the runs (normally opened ahead, see below) ...
TARGET_ACCOUNTS = """
SELECT DISTINCT ON (target_code) target_code AS code, split_part(target_code, ':', 1) AS holder_kind,
       split_part(target_code, ':', 2) AS holder_ref, 'subsidy' AS purpose, target_code AS name, area_code
FROM subsidy_payout WHERE run_id = ANY(CAST(:run_ids AS uuid[]))"""

# ... opened by the pre-allocation, before the quarter's settlement: every borrower whose loan may be
# settled in the quarter (not repaid before it, not due before it, disbursed by its end: early repayers
# too), so the settlement itself only posts.
ACCOUNTS_AHEAD = f"""
SELECT DISTINCT ON (code) code, split_part(code, ':', 1) AS holder_kind, split_part(code, ':', 2) AS holder_ref,
       'subsidy' AS purpose, code AS name, area_code
FROM (
    SELECT {payee_code("l")} AS code, l.area_code
    FROM loan l
    WHERE l.township_code = :township AND l.due_on >= :q_start AND l.disbursed_on <= :q_end
      AND (l.repaid_on IS NULL OR l.repaid_on >= :q_start)
) t"""

PAYOUTS_BY_SOURCE = """
SELECT run_id, source_code, coop_code, sum(amount) AS amount, count(*) AS n
FROM subsidy_payout WHERE run_id = ANY(CAST(:run_ids AS uuid[]))
GROUP BY run_id, source_code, coop_code ORDER BY run_id, source_code, coop_code"""

# Entry headers and lines for ledger.add_entries_from / post_lines_from: one entry per run and payer.
ENTRIES = """
SELECT entry_id, 'subsidy.settle', 'subsidy.settlement:' || CAST(run_id AS text) || ':' || source_code, :paid_on,
       :description, run_id, :created_by, :entries_area
FROM subsidy_payout WHERE run_id = ANY(CAST(:run_ids AS uuid[]))
GROUP BY entry_id, run_id, source_code"""

# All lines of all the runs' entries in ONE call: the ledger checks each entry whole.
LINES = """
SELECT p.entry_id, a.id AS account_id, p.amount AS debit, CAST(0 AS numeric(14,2)) AS credit
FROM subsidy_payout p JOIN ledger_account a ON a.code = p.target_code WHERE p.run_id = ANY(CAST(:run_ids AS uuid[]))
UNION ALL
SELECT p.entry_id, a.id, CAST(0 AS numeric(14,2)), sum(p.amount)
FROM subsidy_payout p JOIN ledger_account a ON a.code = p.source_code WHERE p.run_id = ANY(CAST(:run_ids AS uuid[]))
GROUP BY p.entry_id, a.id"""

# The runs' totals and status, one row per run from arrays computed by the settlement.
FINISH_RUNS = """
UPDATE subsidy_run r
SET total_expected = t.expected, total_paid = t.paid, total_returned = t.returned, total_topped_up = t.topped,
    loans_paid = t.loans_paid, loans_late = t.loans_late, status = 'done', started_at = :started, finished_at = now()
FROM unnest(CAST(:ids AS uuid[]), CAST(:expected AS numeric[]), CAST(:paid AS numeric[]), CAST(:returned AS numeric[]),
            CAST(:topped AS numeric[]), CAST(:loans_paid AS integer[]), CAST(:loans_late AS integer[]))
     AS t(id, expected, paid, returned, topped, loans_paid, loans_late)
WHERE r.id = t.id"""
