"""The SQL of the set-based bank batch engine (`fupin.loans.bank_batch`), kept apart so it reads as SQL.

Every statement works on one chunk of one batch — `bank_batch_event` rows with
`batch_id = :batch AND line_no BETWEEN :lo AND :hi` — and repeats, set-based, the rules
`fupin.loans.postings` applies one event at a time. `:scope_lo`/`:scope_hi` bound the client's area
(the range form of `fupin.areas.scope.within`).
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

# Fields a bank event may carry (BankEvent); anything else refuses the line.
EVENT_FIELDS = ("event_id", "kind", "application_id", "external_id", "amount", "on", "due_on", "rate",
                "reverses_event_id")

_UUID_RE = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_DATE_RE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MONEY_RE = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
_RATE_RE = r"^(0(\.[0-9]{1,6})?|\.[0-9]{1,6})$"


D = "p.d"  # the line's event as jsonb, nulls stripped


def _is_string(field: str) -> str:
    return f"jsonb_typeof({D}->'{field}') = 'string'"


def _valid_date(field: str) -> str:
    """A real calendar day written YYYY-MM-DD. CASE, not AND: PostgreSQL may evaluate AND operands in any
    order, and the arithmetic must only ever see digits."""
    v = f"({D}->>'{field}')"
    y, m, d = f"substr({v},1,4)::int", f"substr({v},6,2)::int", f"substr({v},9,2)::int"
    return (f"CASE WHEN {_is_string(field)} AND {v} ~ '{_DATE_RE}' THEN {y} >= 1 AND {m} BETWEEN 1 AND 12"
            f" AND {d} BETWEEN 1 AND CASE WHEN {m} BETWEEN 1 AND 12 AND {y} >= 1 THEN extract(day FROM"
            f" make_date({y}, {m}, 1) + interval '1 month' - interval '1 day')::int ELSE 0 END ELSE false END")


def _optional(field: str, check: str) -> str:
    return f"(NOT {D} ? '{field}' OR ({check}))"


def _money(field: str) -> str:
    v = f"({D}->>'{field}')"
    return (f"CASE WHEN ({_is_string(field)} AND {v} ~ '{_MONEY_RE}') OR (jsonb_typeof({D}->'{field}') = 'number'"
            f" AND {v} ~ '^[0-9]{{1,12}}$') THEN {v}::numeric > 0 ELSE false END")


def _rate(field: str) -> str:
    v = f"({D}->>'{field}')"
    return (f"({_is_string(field)} AND {v} ~ '{_RATE_RE}') OR (jsonb_typeof({D}->'{field}') = 'number'"
            f" AND {v} = '0')")


def _short_string(field: str, most: int) -> str:
    return f"{_is_string(field)} AND length({D}->>'{field}') <= {most}"


# (condition that must hold, the field it is about, why), in the order a reader checks a line.
_ALLOWED = "ARRAY[" + ", ".join(f"'{f}'" for f in EVENT_FIELDS) + "]"
_CHECKS = [
    (f"jsonb_typeof({D}) = 'object'", "line", "not a JSON object, or a CSV row not as wide as the header"),
    (f"NOT EXISTS (SELECT 1 FROM jsonb_object_keys({D}) k WHERE k <> ALL ({_ALLOWED}))", "line",
     "unknown field"),
    (f"{_is_string('event_id')} AND length({D}->>'event_id') BETWEEN 1 AND 100", "event_id",
     "required, 1 to 100 characters"),
    (f"{_is_string('kind')} AND {D}->>'kind' IN ('disbursement', 'repayment', 'reversal')", "kind",
     "one of disbursement, repayment, reversal"),
    (_optional("application_id", f"{_is_string('application_id')} AND {D}->>'application_id' ~ '{_UUID_RE}'"),
     "application_id", "a UUID"),
    (_optional("external_id", _short_string("external_id", 64)), "external_id", "at most 64 characters"),
    (_optional("amount", _money("amount")), "amount",
     'a positive decimal string with at most two places, e.g. "20000.00"'),
    (_valid_date("on"), "on", "required, a date YYYY-MM-DD"),
    (_optional("due_on", _valid_date("due_on")), "due_on", "a date YYYY-MM-DD"),
    (_optional("rate", _rate("rate")), "rate", 'a decimal string in [0, 1) with at most six places, e.g. "0.043500"'),
    (_optional("reverses_event_id", _short_string("reverses_event_id", 100)), "reverses_event_id",
     "at most 100 characters"),
]


def _first_failure(index: int) -> str:
    """CASE naming the first check a line fails: index 1 gives the field, 2 the reason; NULL if none fails."""
    whens = " ".join(f"WHEN NOT coalesce(({c[0]}), false) THEN '{c[index]}'" for c in _CHECKS)
    return f"CASE WHEN {D} IS NULL THEN '{'line' if index == 1 else 'not valid JSON'}' {whens} END"


def parse_statement(doc_expression: str) -> TextClause:
    """Lines → typed working rows. `doc_expression` turns `l.raw` into the event's jsonb (JSON or CSV)."""
    return text(f"""
WITH raw AS MATERIALIZED (  -- each line read once: the checks below refer to its document a hundred times
    SELECT l.batch_id, l.line_no, l.area_code, {doc_expression} AS raw_doc
    FROM bank_batch_line l WHERE l.batch_id = :batch AND l.line_no BETWEEN :lo AND :hi
),
docs AS MATERIALIZED (
    SELECT x.batch_id, x.line_no, x.area_code, x.raw_doc,
           CASE WHEN jsonb_typeof(x.raw_doc) = 'object' THEN jsonb_strip_nulls(x.raw_doc) ELSE x.raw_doc END AS d
    FROM raw x
),
checked AS MATERIALIZED (  -- the checks once per line (referred to below, they would be repeated per column)
    SELECT p.*, {_first_failure(1)} AS field FROM docs p
)
INSERT INTO bank_batch_event (batch_id, line_no, area_code, county, payload, body_hash, event_id, kind, application_id,
    external_id, amount, on_date, due_on, rate, reverses_event_id, status, http_status, code, detail)
SELECT p.batch_id, p.line_no, p.area_code, left(p.area_code, 6), p.raw_doc,
       CASE WHEN v.field IS NULL THEN encode(sha256(convert_to(p.raw_doc::text, 'UTF8')), 'hex') END,
       CASE WHEN jsonb_typeof(p.d->'event_id') = 'string' THEN left(p.d->>'event_id', 100) END,
       CASE WHEN v.field IS NULL THEN p.d->>'kind' END,
       CASE WHEN v.field IS NULL THEN (p.d->>'application_id')::uuid END,
       CASE WHEN v.field IS NULL THEN p.d->>'external_id' END,
       CASE WHEN v.field IS NULL THEN (p.d->>'amount')::numeric(14, 2) END,
       CASE WHEN v.field IS NULL THEN (p.d->>'on')::date END,
       CASE WHEN v.field IS NULL THEN (p.d->>'due_on')::date END,
       CASE WHEN v.field IS NULL THEN (p.d->>'rate')::numeric(9, 6) END,
       CASE WHEN v.field IS NULL THEN p.d->>'reverses_event_id' END,
       CASE WHEN v.field IS NOT NULL THEN 'refused' END,
       CASE WHEN v.field IS NOT NULL THEN 422 END,
       CASE WHEN v.field IS NOT NULL THEN 'bank.invalid_line' END,
       CASE WHEN v.field IS NOT NULL THEN v.field || ': ' || {_first_failure(2)} END
FROM checked p, LATERAL (SELECT p.field) v
""")


def csv_document(columns: list[str]) -> str:
    """jsonb of a CSV row (no quoting needed: no field may contain a comma), by the header's column order;
    empty fields are absent, a row with the wrong number of fields is NULL (refused as not a row)."""
    pairs = ", ".join(f"'{name}', nullif(btrim(f.v[{i + 1}], ' \"'), '')" for i, name in enumerate(columns))
    return (f"(SELECT CASE WHEN cardinality(f.v) = {len(columns)} THEN jsonb_strip_nulls(jsonb_build_object({pairs}))"
            " END FROM (SELECT string_to_array(l.raw, ',') AS v) f)")


JSON_DOCUMENT = "l.raw::jsonb"
# Used when one line of a chunk is not valid JSON: Python has already replaced such lines' raw text.
SAFE_JSON_DOCUMENT = "CASE WHEN l.raw = '' THEN NULL ELSE l.raw::jsonb END"


_CHUNK = "s.batch_id = :batch AND s.line_no BETWEEN :lo AND :hi"
_IN_SCOPE = "{t}.area_code >= :scope_lo AND {t}.area_code < :scope_hi"

# Resolve what each parsed line refers to, tell the lines that need one-at-a-time treatment from the
# (usual) rest, and decide the rest. Precedence is the sequential path's (postings.post_events): repeat
# of an event id, value date in the future, then for repayments: amount missing, unknown loan, parked
# before disbursement, over-repayment, dated before disbursement. A group (one application) goes
# sequential when it holds a disbursement or reversal, or one of its repayments would over-repay;
# a repeated event id whose first post is in this chunk, or whose application's group is sequential,
# goes sequential too — there the answer depends on what happens earlier in the same batch.
EVALUATE = text(f"""
WITH chunk AS (
    SELECT s.line_no, s.event_id, s.body_hash, s.kind, s.amount, s.on_date, s.reverses_event_id,
           coalesce(s.application_id, ext.application_id, dis.application_id) AS app_ref
    FROM bank_batch_event s
    LEFT JOIN LATERAL (  -- the bank's own loan number: a loan booked already ...
        SELECT x.application_id FROM loan x
        WHERE s.application_id IS NULL AND s.external_id IS NOT NULL AND x.coop_code = :institution
          AND x.external_id = s.external_id AND {_IN_SCOPE.format(t='x')}
        ORDER BY x.disbursed_on DESC LIMIT 1) ext ON true
    LEFT JOIN LATERAL (  -- ... or one disbursed earlier in this chunk (then the group goes sequential)
        SELECT d.application_id FROM bank_batch_event d
        WHERE s.application_id IS NULL AND s.external_id IS NOT NULL AND ext.application_id IS NULL
          AND d.batch_id = s.batch_id AND d.line_no >= :lo AND d.line_no < s.line_no AND d.status IS NULL
          AND d.kind = 'disbursement' AND d.external_id = s.external_id
        ORDER BY d.line_no DESC LIMIT 1) dis ON true
    WHERE {_CHUNK} AND s.status IS NULL
),
prior AS (
    SELECT c.*, x.body_hash AS prior_hash, x.status AS prior_status, x.code AS prior_code,
           x.application_id AS prior_app,
           row_number() OVER (PARTITION BY c.event_id ORDER BY c.line_no) AS occurrence
    FROM chunk c LEFT JOIN bank_loan_event x ON x.client_id = :client AND x.event_id = c.event_id
),
grouped AS (
    SELECT p.*,
           CASE WHEN p.kind = 'reversal' THEN coalesce(
               (SELECT t.application_id FROM bank_loan_event t
                WHERE t.client_id = :client AND t.event_id = p.reverses_event_id),
               (SELECT e.app_ref FROM chunk e WHERE e.event_id = p.reverses_event_id AND e.line_no < p.line_no
                ORDER BY e.line_no LIMIT 1))
           ELSE p.app_ref END AS grp_app,
           (p.prior_hash IS NULL AND p.occurrence = 1) AS fresh,
           (p.on_date > :today) AS future
    FROM prior p
),
classified AS (
    SELECT g.*, coalesce(g.grp_app::text, 'line:' || g.line_no) AS grp,
           bool_or(g.fresh AND NOT g.future AND g.kind <> 'repayment')
               OVER (PARTITION BY coalesce(g.grp_app::text, 'line:' || g.line_no)) AS other_kinds
    FROM grouped g
),
state AS (
    SELECT c.*, a.id AS app_id, a.status AS app_status, l.id AS loan_id, l.outstanding, l.disbursed_on
    FROM classified c
    LEFT JOIN loan_application a ON a.id = c.grp_app AND {_IN_SCOPE.format(t='a')}
    LEFT JOIN loan l ON l.application_id = a.id
),
pre AS (
    SELECT s.*,
           CASE WHEN NOT s.fresh OR s.future OR s.other_kinds THEN NULL
                WHEN s.amount IS NULL THEN 'fields_missing'
                WHEN s.app_id IS NULL OR (s.loan_id IS NULL AND s.app_status <> 'approved') THEN 'unknown'
                WHEN s.loan_id IS NULL THEN 'parked'
                WHEN s.on_date >= s.disbursed_on THEN 'applies'
                ELSE 'early' END AS pre
    FROM state s
),
running AS (  -- what is left before each line: the balance less the repayments applied above it
    SELECT r.*,
           r.outstanding - (coalesce(sum(CASE WHEN r.pre = 'applies' THEN r.amount END) OVER (
               PARTITION BY r.grp ORDER BY r.line_no), 0)
               - CASE WHEN r.pre = 'applies' THEN r.amount ELSE 0 END) AS remaining
    FROM pre r
),
decided AS (
    SELECT u.*,
           (u.other_kinds OR coalesce(bool_or(u.pre = 'applies' AND u.amount > u.remaining)
                                      OVER (PARTITION BY u.grp), false)) AS seq_group
    FROM running u
),
seq_apps AS (
    SELECT DISTINCT q.grp_app FROM decided q WHERE q.seq_group AND q.grp_app IS NOT NULL
),
final AS (
    SELECT d.*,
           (d.occurrence > 1 OR (d.fresh AND NOT d.future AND d.seq_group)
            OR (d.prior_hash IS NOT NULL AND sa.grp_app IS NOT NULL)) AS sequential
    FROM decided d LEFT JOIN seq_apps sa ON sa.grp_app = d.prior_app
)
UPDATE bank_batch_event s SET
    target_application_id = f.app_id,
    loan_id = CASE WHEN f.pre = 'applies' AND NOT f.sequential THEN f.loan_id END,
    sequential = f.sequential,
    status = CASE WHEN f.sequential THEN NULL
                  WHEN f.prior_hash IS NOT NULL THEN
                      CASE WHEN f.prior_hash = f.body_hash THEN 'duplicate' ELSE 'conflict' END
                  WHEN f.future THEN 'refused'
                  WHEN f.pre = 'applies' THEN 'applied'
                  WHEN f.pre = 'parked' THEN 'parked'
                  ELSE 'refused' END,
    http_status = CASE WHEN f.sequential THEN NULL
                       WHEN f.prior_hash IS NOT NULL THEN CASE WHEN f.prior_hash = f.body_hash THEN 200 ELSE 409 END
                       WHEN f.future THEN 422
                       WHEN f.pre = 'applies' THEN 200
                       WHEN f.pre = 'parked' THEN 202
                       WHEN f.pre = 'unknown' THEN 404
                       ELSE 422 END,
    code = CASE WHEN f.sequential THEN NULL
                WHEN f.prior_hash IS NOT NULL THEN
                    CASE WHEN f.prior_hash = f.body_hash THEN f.prior_code ELSE 'bank.event_conflict' END
                WHEN f.future THEN 'bank.value_date_in_future'
                WHEN f.pre = 'fields_missing' THEN 'bank.fields_missing'
                WHEN f.pre = 'unknown' THEN 'loan.unknown_loan'
                WHEN f.pre = 'early' AND f.amount > f.remaining THEN 'loan.over_repayment'
                WHEN f.pre = 'early' THEN 'loan.repayment_before_disbursement' END,
    detail = CASE WHEN f.sequential THEN NULL
                  WHEN f.prior_hash IS NOT NULL THEN
                      CASE WHEN f.prior_hash = f.body_hash
                           THEN 'already received (' || f.prior_status || '); nothing changed'
                           ELSE 'this event_id was posted with a different body' END
                  WHEN f.future THEN 'the value date lies in the future'
                  WHEN f.pre = 'fields_missing' THEN 'a repayment needs an amount'
                  WHEN f.pre = 'unknown' THEN 'no approved loan with this application id in your area'
                  WHEN f.pre = 'early' AND f.amount > f.remaining THEN 'only ' || f.remaining || ' is outstanding'
                  WHEN f.pre = 'early' THEN 'repayment dated before disbursement' END
FROM final f
WHERE {_CHUNK} AND s.line_no = f.line_no
""")

# Every fresh event is recorded once; those decided here carry their outcome, the sequential ones are
# recorded as received and decided by postings.apply_recorded, in line order.
RECORD_DECIDED = text(f"""
INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, application_id, status, code,
                             payload, received_at)
SELECT gen_random_uuid(), CAST(:client AS varchar), s.event_id, s.body_hash, s.kind,
       CAST(:client_area AS varchar), left(CAST(:client_area AS varchar), 6),
       CASE WHEN s.kind = 'repayment' THEN coalesce(s.application_id, s.target_application_id)
            ELSE s.application_id END, s.status,
       s.code, s.payload, now()
FROM bank_batch_event s
WHERE {_CHUNK} AND NOT s.sequential AND s.status IN ('applied', 'parked', 'refused') AND s.body_hash IS NOT NULL
  AND s.code IS DISTINCT FROM 'bank.invalid_line'
ORDER BY s.line_no
ON CONFLICT (client_id, event_id, county) DO NOTHING
""")

RECORD_SEQUENTIAL = text(f"""
INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, application_id, status,
                             payload, received_at)
SELECT gen_random_uuid(), CAST(:client AS varchar), s.event_id, s.body_hash, s.kind,
       CAST(:client_area AS varchar), left(CAST(:client_area AS varchar), 6), s.application_id, 'received',
       s.payload, now()
FROM bank_batch_event s
WHERE {_CHUNK} AND s.sequential
  AND NOT EXISTS (SELECT 1 FROM bank_batch_event o WHERE o.batch_id = s.batch_id AND o.line_no < s.line_no
                  AND o.line_no >= :lo AND o.event_id = s.event_id AND o.body_hash IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM bank_loan_event x WHERE x.client_id = :client AND x.event_id = s.event_id)
ORDER BY s.line_no
ON CONFLICT (client_id, event_id, county) DO NOTHING
RETURNING id, event_id
""")

COUNT_TO_RECORD = text(f"""
SELECT count(*) FROM bank_batch_event s
WHERE {_CHUNK} AND NOT s.sequential AND s.status IN ('applied', 'parked', 'refused') AND s.body_hash IS NOT NULL
  AND s.code IS DISTINCT FROM 'bank.invalid_line'
""")

INSERT_REPAYMENTS = text(f"""
INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on, source_event_id, recorded_at)
SELECT gen_random_uuid(), s.loan_id, l.area_code, left(l.area_code, 6), s.amount, s.on_date, s.event_id, now()
FROM bank_batch_event s JOIN loan l ON l.id = s.loan_id
WHERE {_CHUNK} AND s.status = 'applied' AND NOT s.sequential
ORDER BY s.line_no
""")

# Loan balances and statuses, the application status that follows them, and for a loan repaid in full
# the application's 'repaid' step and the household's notice — as postings._settle_status/_step do.
SETTLE_LOANS = text(f"""
WITH applied AS (
    SELECT s.loan_id, s.line_no, s.amount, s.on_date, max(s.line_no) OVER (PARTITION BY s.loan_id) AS last_line
    FROM bank_batch_event s
    WHERE {_CHUNK} AND s.status = 'applied' AND NOT s.sequential
),
g AS (
    SELECT loan_id, sum(amount) AS total, count(*) AS n, max(on_date) AS max_on,
           max(on_date) FILTER (WHERE line_no = last_line) AS last_on,
           coalesce(max(on_date) FILTER (WHERE line_no < last_line), '-infinity'::date) AS max_on_before_last
    FROM applied GROUP BY loan_id
),
-- The loan as it was comes from the UPDATE's own join (`o`, the statement's snapshot), not from a CTE
-- joined back to `g`: two CTE scans joined in a nested loop were quadratic (11,138 loans compared with
-- 11,138 loans, 124 million rows filtered, 28 s of a 100,000-line chunk).
upd AS (
    UPDATE loan l SET
        outstanding = l.outstanding - g.total,
        repaid_on = CASE WHEN l.outstanding = g.total THEN g.last_on END,
        status = CASE WHEN l.outstanding = g.total THEN
                          CASE WHEN g.last_on <= l.due_on THEN 'repaid_on_time' ELSE 'repaid_late' END
                      WHEN l.status = 'overdue' OR g.max_on > l.due_on THEN 'overdue' ELSE 'current' END,
        updated_at = now()
    FROM g JOIN loan o ON o.id = g.loan_id
    WHERE l.id = g.loan_id
    RETURNING l.id, l.application_id, l.status, g.last_on, g.n, g.max_on_before_last, o.status AS old_status,
              o.due_on AS old_due_on
),
apps AS (
    SELECT a.id, a.area_code, a.household_id, u.last_on,
           CASE WHEN u.n = 1 THEN a.status
                WHEN u.old_status = 'overdue' OR u.max_on_before_last > u.old_due_on THEN 'overdue'
                ELSE 'disbursed' END AS before_last,
           CASE WHEN u.status LIKE 'repaid%' THEN 'repaid' WHEN u.status = 'overdue' THEN 'overdue'
                ELSE 'disbursed' END AS new_status,
           a.status AS old_status
    FROM upd u JOIN loan_application a ON a.id = u.application_id
),
app_upd AS (
    UPDATE loan_application a SET status = n.new_status, updated_at = now()
    FROM apps n WHERE a.id = n.id AND a.status <> n.new_status
    RETURNING a.id
),
steps AS (
    INSERT INTO loan_application_step (id, application_id, area_code, county, step, from_status, to_status, role, actor,
                                       on_date, opinion, recorded_at)
    SELECT gen_random_uuid(), n.id, n.area_code, left(n.area_code, 6), 'repaid', n.before_last, 'repaid', 'bank', CAST(:actor AS varchar), n.last_on,
           '贷款已还清', now()
    FROM apps n WHERE n.new_status = 'repaid' AND n.before_last <> 'repaid'
    RETURNING application_id
)
INSERT INTO loan_notification (id, area_code, county, household_id, application_id, message, created_at)
SELECT gen_random_uuid(), n.area_code, left(n.area_code, 6), n.household_id, n.id, '贷款已还清', now()
FROM apps n WHERE n.new_status = 'repaid' AND n.before_last <> 'repaid'
""")

SEQUENTIAL_ROWS = text(f"""
SELECT s.line_no, s.event_id, s.body_hash, s.payload FROM bank_batch_event s
WHERE {_CHUNK} AND s.sequential ORDER BY s.line_no
""")

KEEP_RESULTS = text(f"""
INSERT INTO bank_batch_result (batch_id, line_no, area_code, county, event_id, status, http_status, code, detail, loan_id)
SELECT s.batch_id, s.line_no, s.area_code, left(s.area_code, 6), s.event_id, s.status, s.http_status, s.code, s.detail, s.loan_id
FROM bank_batch_event s WHERE {_CHUNK}
""")

COUNT_OUTCOMES = text(f"""
SELECT s.status, s.sequential, count(*) FROM bank_batch_event s WHERE {_CHUNK} GROUP BY s.status, s.sequential
""")
