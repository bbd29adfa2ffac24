"""One signed repayment, posted on the pool's raw asyncpg connection: the hot write path of bank posting.

Nearly every one-event post of a bank is a plain repayment addressed by application id. For those,
`post_repayment` does what `postings.post_events` does for one event — the same rows, decided by the same
rules (`postings.decide_repayment`) — in four round trips, with no ORM and no SQLAlchemy session:

1. `BEGIN; SET LOCAL fupin.scope = …; SET LOCAL statement_timeout = …`, one simple-protocol message, so
   row-level security sees the client's area in this transaction only;
2. one statement looks for the event's first post (by client and event_id) and reads and locks its
   application and then its loan (the reference path's lock order);
3. one statement records the event with its outcome (`INSERT … ON CONFLICT DO NOTHING`: the idempotency
   check, final if a concurrent post of the same event id committed in between) and, only if it was
   recorded, writes what the decision changed — repayment row, loan balance and status, application status,
   'repaid' step and notice — and the audit row;
4. COMMIT, before the route builds its answer: nothing is acknowledged that did not commit.

A repeated event id is answered from step 2 and writes only its audit row (a concurrent repeat found in
step 3 costs one more read). Everything else — a batch, a disbursement, a reversal, a repayment by the bank's own loan number, a
request with an `Idempotency-Key` — takes the session path (`postings.post_events`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fupin.areas.scope import bounds, checked_pattern, scope_pattern
from fupin.audit.service import county_chain
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import RuleViolation
from fupin.fastread import Prepared, read_transaction
from fupin.loans import postings, repayments
from fupin.loans.models import BankClient
from fupin.loans.schemas import BankEvent, BankEventResult


def takes(event: BankEvent) -> bool:
    """Whether this event can go the fast path: a repayment addressed by application id."""
    return event.kind == "repayment" and event.application_id is not None


class write_transaction(read_transaction):
    """`fastread.read_transaction`, read-write: the client's scoped transaction on a pooled raw connection,
    committed on a clean exit (a failing COMMIT raises, as the session path's does), rolled back or the
    connection discarded on error; database errors leave as `DBAPIError`, so the API answers them alike
    (409 to retry, 503 when the database is gone)."""

    __slots__ = ()

    def __init__(self, engine: AsyncEngine, *, scope: str, timeout_ms: int) -> None:
        self._engine = engine
        self._begin = (f"BEGIN; SET LOCAL fupin.scope = '{checked_pattern(scope)}'; "
                       f"SET LOCAL statement_timeout = {int(timeout_ms)}")


_IN_SCOPE = "{t}.area_code >= :scope_lo AND {t}.area_code < :scope_hi"

# The event's first post, if any, and the hash this body would have (as `postings._RECORD` computes it:
# sha256 of PostgreSQL's canonical text of the jsonb); the application, then its loan, read and locked
# (the reference path's lock order).
_LOOK_AND_LOCK = Prepared(text(f"""
WITH a AS (
    SELECT a.id, a.area_code, a.household_id, a.status FROM loan_application a
    WHERE a.id = CAST(:app AS uuid) AND {_IN_SCOPE.format(t='a')}
    FOR UPDATE
), l AS (
    SELECT l.id, l.application_id, l.area_code, l.outstanding, l.status, l.due_on, l.disbursed_on, l.repaid_on
    FROM loan l
    WHERE l.application_id IN (SELECT a.id FROM a) AND {_IN_SCOPE.format(t='l')}
    FOR UPDATE
)
SELECT p.body_hash AS prior_hash, p.status AS prior_status, p.code AS prior_code,
       encode(sha256(convert_to(CAST(CAST(:doc AS jsonb) AS text), 'UTF8')), 'hex') AS mine,
       a.id AS app_id, a.area_code AS app_area, a.household_id, a.status AS app_status,
       l.id AS loan_id, l.area_code AS loan_area, l.outstanding, l.status AS loan_status, l.due_on, l.disbursed_on,
       l.repaid_on
FROM (SELECT 1) one
LEFT JOIN bank_loan_event p ON p.client_id = CAST(:client AS varchar) AND p.event_id = CAST(:event_id AS varchar)
LEFT JOIN a ON true LEFT JOIN l ON true
"""))

_PRIOR = Prepared(text("""
SELECT e.body_hash AS prior_hash, e.status AS prior_status, e.code AS prior_code, CAST(:mine AS varchar) AS mine
FROM bank_loan_event e WHERE e.client_id = :client AND e.event_id = :event_id
"""))

# The audit row as `audit.record` writes it.
_AUDIT_VALUES = """CAST(:at AS timestamptz), NULL, CAST(:actor AS varchar), CAST(:role AS varchar),
           CAST(:area AS varchar), CAST(:county AS varchar), 'bank.loan_events', 'bank_client',
           CAST(:client AS varchar), 'ok', CAST(:after AS jsonb)"""
_AUDIT_COLUMNS = """audit_event (occurred_at, actor_id, actor_name, role, area_code, county_code, action, entity,
                         entity_id, result, "after")"""
_AUDIT = Prepared(text(f"INSERT INTO {_AUDIT_COLUMNS} VALUES ({_AUDIT_VALUES})"))

# The event recorded with its outcome (INSERT … ON CONFLICT DO NOTHING: the idempotency check, final if a
# concurrent post of the same event id committed first) and, only if it was, what the decision changed —
# the rows `repayments.WRITE_CTES` writes for one repayment — and the audit row. Recording the outcome at
# once, rather than 'received' then updated as the session path does, saves an UPDATE of the event row
# that no index could take as HOT (its status is in the partial index of parked events).
_RECORD_AND_WRITE = Prepared(text(f"""
WITH ev AS (
    INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, application_id, status,
                                 code, payload, received_at)
    VALUES (gen_random_uuid(), CAST(:client AS varchar), CAST(:event_id AS varchar), CAST(:mine AS varchar),
            'repayment', CAST(:area AS varchar), left(CAST(:area AS varchar), 6), CAST(:app AS uuid),
            CAST(:status AS varchar), CAST(:code AS varchar), CAST(:doc AS jsonb), now())
    ON CONFLICT (client_id, event_id, county) DO NOTHING
    RETURNING id
), rep AS (
    INSERT INTO loan_repayment (id, loan_id, area_code, county, amount, paid_on, source_event_id, recorded_at)
    SELECT gen_random_uuid(), CAST(:loan AS uuid), CAST(:loan_area AS varchar), left(CAST(:loan_area AS varchar), 6),
           CAST(:amount AS numeric(14, 2)), CAST(:on AS date), CAST(:event_id AS varchar), now()
    FROM ev WHERE CAST(:loan AS uuid) IS NOT NULL
    RETURNING 1
), ln AS (
    UPDATE loan l SET outstanding = CAST(:outstanding AS numeric(14, 2)), status = CAST(:loan_status AS varchar),
                      repaid_on = CAST(:repaid_on AS date), updated_at = now()
    FROM ev WHERE l.id = CAST(:loan AS uuid)
    RETURNING 1
), ap AS (
    UPDATE loan_application a SET status = CAST(:app_status AS varchar), updated_at = now()
    FROM ev WHERE a.id = CAST(:changed_app AS uuid)
    RETURNING 1
), st AS (
    INSERT INTO loan_application_step (id, application_id, area_code, county, step, from_status, to_status, role, actor,
                                       on_date, opinion, recorded_at)
    SELECT gen_random_uuid(), CAST(:repaid_app AS uuid), CAST(:app_area AS varchar),
           left(CAST(:app_area AS varchar), 6), 'repaid', CAST(:before AS varchar), 'repaid', CAST(:role AS varchar),
           CAST(:actor AS varchar), CAST(:on AS date), '贷款已还清', now()
    FROM ev WHERE CAST(:repaid_app AS uuid) IS NOT NULL
    RETURNING 1
), nt AS (
    INSERT INTO loan_notification (id, area_code, county, household_id, application_id, message, created_at)
    SELECT gen_random_uuid(), CAST(:app_area AS varchar), left(CAST(:app_area AS varchar), 6),
           CAST(:household AS uuid), CAST(:repaid_app AS uuid), '贷款已还清', now()
    FROM ev WHERE CAST(:repaid_app AS uuid) IS NOT NULL
    RETURNING 1
), au AS (
    INSERT INTO {_AUDIT_COLUMNS}
    SELECT {_AUDIT_VALUES} FROM ev
    RETURNING 1
)
SELECT (SELECT ev.id FROM ev) AS row_id,
       (SELECT count(*) FROM rep) + (SELECT count(*) FROM ln) + (SELECT count(*) FROM ap) + (SELECT count(*) FROM st)
       + (SELECT count(*) FROM nt) + (SELECT count(*) FROM au) AS written
"""))


def _rows(record: asyncpg.Record) -> tuple[repayments.AppRow | None, repayments.LoanRow | None]:
    app = (repayments.AppRow(record["app_id"], record["app_area"], record["household_id"], record["app_status"])
           if record["app_id"] is not None else None)
    loan = (repayments.LoanRow(record["loan_id"], record["app_id"], record["loan_area"], record["outstanding"],
                               record["loan_status"], record["due_on"], record["disbursed_on"], record["repaid_on"])
            if record["loan_id"] is not None else None)
    return app, loan


def _repeat(event: BankEvent, prior: asyncpg.Record) -> BankEventResult:
    """What the event's first post looks like now: the same body is a duplicate, another body a conflict
    (as `postings._answer_repeat`)."""
    if prior["prior_hash"] != prior["mine"]:
        return BankEventResult(event_id=event.event_id, status="conflict", http_status=409,
                               code="bank.event_conflict", detail="this event_id was posted with a different body")
    return BankEventResult(event_id=event.event_id, status="duplicate", http_status=200, code=prior["prior_code"],
                           detail=f"already received ({prior['prior_status']}); nothing changed")


def _changes(pending: repayments.Pending) -> dict[str, Any]:
    """What `postings.decide_repayment` left for one repayment, as `_RECORD_AND_WRITE`'s parameters."""
    loan = next(iter(pending.loans.values()), None)
    changed = next(iter(pending.apps.values()), None)
    repaid = pending.repaid[0] if pending.repaid else None
    return {
        "loan": loan.id if loan else None, "loan_area": loan.area_code if loan else None,
        "outstanding": loan.outstanding if loan else None, "loan_status": loan.status if loan else None,
        "repaid_on": loan.repaid_on if loan else None,
        "changed_app": changed.id if changed else None, "app_status": changed.status if changed else None,
        "repaid_app": repaid[0].id if repaid else None, "app_area": repaid[0].area_code if repaid else None,
        "household": repaid[0].household_id if repaid else None, "before": repaid[1] if repaid else None,
    }


async def post_repayment(
    engine: AsyncEngine, *, principal: Principal, client: BankClient, raw: Any, event: BankEvent, timeout_ms: int,
) -> BankEventResult:
    """Post one repayment (`takes(event)`), committed when this returns; `raw` is the event's JSON object as
    posted (its text is the idempotency hash's input, as on the session path)."""
    assert takes(event)
    doc = json.dumps(raw, ensure_ascii=False)
    low, high = bounds(principal.area_code)
    ids = {"client": client.client_id, "event_id": event.event_id}
    audit = {"at": datetime.now(UTC), "actor": principal.username, "role": principal.role.value,
             "area": client.area_code, "county": county_chain(client.area_code)}
    async with write_transaction(engine, scope=scope_pattern(principal), timeout_ms=timeout_ms) as conn:
        found = await _LOOK_AND_LOCK.fetchrow(conn, doc=doc, app=event.application_id, scope_lo=low, scope_hi=high,
                                              **ids)
        assert found is not None  # one row whatever was found
        if found["prior_hash"] is not None:
            result = _repeat(event, found)
            await _AUDIT.fetchrow(conn, **audit, client=client.client_id, after=json.dumps({result.status: 1}))
            return result
        pending = repayments.Pending()
        if event.on > business_date():
            result = postings.event_result(event, "refused", exc=RuleViolation(
                "bank.value_date_in_future", "the value date lies in the future", "记账日期晚于今天"))
        else:
            app, loan = _rows(found)
            result = postings.decide_repayment(event, app, loan, pending)
        written = await _RECORD_AND_WRITE.fetchrow(
            conn, **ids, **audit, **_changes(pending), mine=found["mine"], app=event.application_id,
            status=result.status, code=result.code, doc=doc, amount=event.amount, on=event.on,
            after=json.dumps({result.status: 1}))
        assert written is not None
        if written["row_id"] is None:  # a concurrent post of the same event id committed first
            prior = await _PRIOR.fetchrow(conn, mine=found["mine"], **ids)
            assert prior is not None  # rows of bank_loan_event are never deleted
            result = _repeat(event, prior)
            await _AUDIT.fetchrow(conn, **audit, client=client.client_id, after=json.dumps({result.status: 1}))
    return result
