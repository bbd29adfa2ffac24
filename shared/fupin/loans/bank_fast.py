"""One signed repayment, posted on the pool's raw asyncpg connection: the hot write path of bank posting.

Nearly every one-event post of a bank is a plain repayment addressed by application id. For those,
`post_repayment` does what `postings.post_events` does for one event — the same rows, decided by the same
rules (`postings.decide_repayment`) — in four round trips, with no ORM and no SQLAlchemy session:

1. `BEGIN; SET LOCAL fupin.scope = …; SET LOCAL statement_timeout = …`, one simple-protocol message, so
   row-level security sees the client's area in this transaction only;
2. one statement records the event (`INSERT … ON CONFLICT DO NOTHING`: the idempotency check by
   (client, event_id)) and reads and locks its application and then its loan (the reference path's lock
   order);
3. one statement writes what the decision changed — repayment row, loan balance and status, application
   status, 'repaid' step and notice, the event's outcome (`repayments.WRITE_CTES`) — and the audit row;
4. COMMIT, before the route builds its answer: nothing is acknowledged that did not commit.

A repeated event id costs one more read (the first post's hash and outcome, as `postings._answer_repeat`).
Everything else — a batch, a disbursement, a reversal, a repayment by the bank's own loan number, a
request with an `Idempotency-Key` — takes the session path (`postings.post_events`).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import DateTime, bindparam, text
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

# The event row as `postings._RECORD` writes it (hash of PostgreSQL's canonical text of the jsonb), and the
# application, then its loan, read and locked.
_RECORD_AND_LOCK = Prepared(text(f"""
WITH d AS (
    SELECT CAST(:doc AS jsonb) AS doc
), ev AS (
    INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, application_id, status,
                                 payload, received_at)
    SELECT CAST(:id AS uuid), CAST(:client AS varchar), CAST(:event_id AS varchar),
           encode(sha256(convert_to(CAST(d.doc AS text), 'UTF8')), 'hex'), 'repayment', CAST(:area AS varchar),
           left(CAST(:area AS varchar), 6), CAST(:app AS uuid), 'received', d.doc, now()
    FROM d
    ON CONFLICT (client_id, event_id, county) DO NOTHING
    RETURNING id
), a AS (
    SELECT a.id, a.area_code, a.household_id, a.status FROM loan_application a
    WHERE a.id = CAST(:app AS uuid) AND {_IN_SCOPE.format(t='a')}
    FOR UPDATE
), l AS (
    SELECT l.id, l.application_id, l.area_code, l.outstanding, l.status, l.due_on, l.disbursed_on, l.repaid_on
    FROM loan l
    WHERE l.application_id IN (SELECT a.id FROM a) AND {_IN_SCOPE.format(t='l')}
    FOR UPDATE
)
SELECT (SELECT ev.id FROM ev) AS row_id,
       a.id AS app_id, a.area_code AS app_area, a.household_id, a.status AS app_status,
       l.id AS loan_id, l.area_code AS loan_area, l.outstanding, l.status AS loan_status, l.due_on, l.disbursed_on,
       l.repaid_on
FROM (SELECT 1) one LEFT JOIN a ON true LEFT JOIN l ON true
"""))

_PRIOR = Prepared(text("""
SELECT e.body_hash, e.status, e.code,
       encode(sha256(convert_to(CAST(CAST(:doc AS jsonb) AS text), 'UTF8')), 'hex') AS mine
FROM bank_loan_event e WHERE e.client_id = :client AND e.event_id = :event_id
"""))

# What the decision changed and the request's audit row (as `audit.record` writes it), in one statement.
_WRITE_AUDITED = Prepared(text(repayments.WRITE_CTES + """, au AS (
    INSERT INTO audit_event (occurred_at, actor_id, actor_name, role, area_code, county_code, action, entity, entity_id,
                             result, "after")
    VALUES (:at, NULL, CAST(:actor AS varchar), CAST(:role AS varchar), CAST(:area AS varchar),
            CAST(:county AS varchar), 'bank.loan_events', 'bank_client', CAST(:client AS varchar), 'ok',
            CAST(:after AS jsonb))
    RETURNING 1
)
SELECT (SELECT count(*) FROM au)
""").bindparams(*repayments.WRITE_BINDS, bindparam("at", type_=DateTime(timezone=True))))


def _rows(record: asyncpg.Record) -> tuple[repayments.AppRow | None, repayments.LoanRow | None]:
    app = (repayments.AppRow(record["app_id"], record["app_area"], record["household_id"], record["app_status"])
           if record["app_id"] is not None else None)
    loan = (repayments.LoanRow(record["loan_id"], record["app_id"], record["loan_area"], record["outstanding"],
                               record["loan_status"], record["due_on"], record["disbursed_on"], record["repaid_on"])
            if record["loan_id"] is not None else None)
    return app, loan


async def _repeat(conn: asyncpg.Connection, client: BankClient, event: BankEvent, doc: str) -> BankEventResult:
    """What the event's first post looks like now: the same body is a duplicate, another body a conflict."""
    prior = await _PRIOR.fetchrow(conn, doc=doc, client=client.client_id, event_id=event.event_id)
    assert prior is not None  # the insert conflicted with it, and rows of bank_loan_event are never deleted
    if prior["body_hash"] != prior["mine"]:
        return BankEventResult(event_id=event.event_id, status="conflict", http_status=409,
                               code="bank.event_conflict", detail="this event_id was posted with a different body")
    return BankEventResult(event_id=event.event_id, status="duplicate", http_status=200, code=prior["code"],
                           detail=f"already received ({prior['status']}); nothing changed")


async def post_repayment(
    engine: AsyncEngine, *, principal: Principal, client: BankClient, raw: Any, event: BankEvent, timeout_ms: int,
) -> BankEventResult:
    """Post one repayment (`takes(event)`), committed when this returns; `raw` is the event's JSON object as
    posted (its text is the idempotency hash's input, as on the session path)."""
    assert takes(event)
    doc = json.dumps(raw, ensure_ascii=False)
    low, high = bounds(principal.area_code)
    pending = repayments.Pending()
    async with write_transaction(engine, scope=scope_pattern(principal), timeout_ms=timeout_ms) as conn:
        row_id = uuid.uuid4()
        record = await _RECORD_AND_LOCK.fetchrow(
            conn, doc=doc, id=row_id, client=client.client_id, event_id=event.event_id, area=client.area_code,
            app=event.application_id, scope_lo=low, scope_hi=high)
        assert record is not None  # one row whatever was found
        if record["row_id"] is None:
            result = await _repeat(conn, client, event, doc)
        else:
            if event.on > business_date():
                result = postings.event_result(event, "refused", exc=RuleViolation(
                    "bank.value_date_in_future", "the value date lies in the future", "记账日期晚于今天"))
            else:
                app, loan = _rows(record)
                result = postings.decide_repayment(event, app, loan, pending)
            pending.events.append((row_id, result.status, result.code, event.application_id))
        params = repayments.write_params(pending, actor=principal.username)
        await _WRITE_AUDITED.fetchrow(
            conn, **params, at=datetime.now(UTC), area=client.area_code, county=county_chain(client.area_code),
            client=client.client_id, after=json.dumps({result.status: 1}))
    return result
