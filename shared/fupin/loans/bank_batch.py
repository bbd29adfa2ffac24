"""Bank postings at bulk speed: a bulk request or a daily file is evaluated set-based in PostgreSQL.

A batch's lines are staged in `bank_batch_line` (a bulk request's events as JSON lines; a file's lines
as uploaded, CSV or JSON lines), then each chunk of lines is
  1. parsed and checked field by field (`batch_sql.parse_statement`),
  2. evaluated (`batch_sql.EVALUATE`): idempotency by (client, event_id), what each event refers to (by
     application id or by the bank's own loan number), and — for the plain repayments that are nearly
     all of a daily file — the outcome, with the same rules and precedence as one-by-one posting,
  3. applied with a few INSERT … SELECT / UPDATE … FROM statements (events, repayments, loan balances and
     statuses, application statuses, 'repaid' steps and notices),
while the few events whose outcome depends on what happens before them in the same batch (disbursements,
reversals, an over-repayment, a repeated event id) are applied one at a time, in line order, by
`postings.apply_recorded` — the reference semantics. Groups are per application, and applications are
independent, so the answer for every line is the one a one-by-one post of the same events would give.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UUID as SaUUID
from sqlalchemy.types import Integer, String, Text

from fupin.areas.codes import prefix_of
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict
from fupin.loans import batch_sql as sql
from fupin.loans import postings
from fupin.loans.models import BankBatch, BankBatchEvent, BankBatchLine, BankClient, BankLoanEvent
from fupin.loans.schemas import BankEvent, BankEventResult

CHUNK_LINES = 100_000
WORK_MEM = "128MB"  # per sort or hash of a chunk's statements (SET LOCAL: this transaction only)
# invalid_text_representation (not JSON), untranslatable_character / unsupported Unicode escape (\u0000)
_NOT_JSON = {"22P02", "22P05", "22021"}
Progress = Callable[[int, int], Awaitable[None]]

_SET_OUTCOMES = text(
    "UPDATE bank_batch_event s SET status = v.status, http_status = v.http_status, code = v.code, "
    "detail = v.detail, loan_id = v.loan_id "
    "FROM unnest(:lines, :statuses, :https, :codes, :details, :loans) AS v(line_no, status, http_status, code, "
    "detail, loan_id) WHERE s.batch_id = :batch AND s.line_no = v.line_no"
).bindparams(
    bindparam("lines", type_=ARRAY(Integer)), bindparam("statuses", type_=ARRAY(String)),
    bindparam("https", type_=ARRAY(Integer)), bindparam("codes", type_=ARRAY(String)),
    bindparam("details", type_=ARRAY(Text)), bindparam("loans", type_=ARRAY(SaUUID)),
)


async def stage_request(session: AsyncSession, *, client: BankClient, raw_events: list[dict[str, Any]]) -> BankBatch:
    """A bulk request as a batch of JSON lines (processed at once, in the request's own transaction)."""
    batch = BankBatch(id=uuid.uuid4(), client_id=client.client_id, area_code=client.area_code, source="request",
                      format="jsonl", lines=len(raw_events), status="received")
    session.add(batch)
    await session.flush()
    await session.execute(insert(BankBatchLine), [
        {"batch_id": batch.id, "line_no": n, "area_code": client.area_code, "raw": json.dumps(raw, ensure_ascii=False)}
        for n, raw in enumerate(raw_events, start=1)])
    return batch


def _params(batch: BankBatch, client: BankClient, principal: Principal, lo: int, hi: int) -> dict[str, Any]:
    prefix = prefix_of(client.area_code)
    return {"batch": batch.id, "lo": lo, "hi": hi, "client": client.client_id, "client_area": client.area_code,
            "institution": client.institution_code, "scope_lo": prefix, "scope_hi": prefix + ":",
            "today": business_date(), "actor": principal.username}


async def _bad_json_lines(session: AsyncSession, batch: uuid.UUID, lo: int, hi: int) -> list[int]:
    """Lines PostgreSQL cannot read as JSON, found by halving the range (rare: only when a chunk fails)."""
    probe = text("SELECT count(l.raw::jsonb) FROM bank_batch_line l WHERE l.batch_id = :b "
                 "AND l.line_no BETWEEN :lo AND :hi")
    try:
        async with session.begin_nested():
            await session.execute(probe, {"b": batch, "lo": lo, "hi": hi})
        return []
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in _NOT_JSON:
            raise
        if lo == hi:
            return [lo]
    mid = (lo + hi) // 2
    return await _bad_json_lines(session, batch, lo, mid) + await _bad_json_lines(session, batch, mid + 1, hi)


async def _parse(session: AsyncSession, batch: BankBatch, params: dict[str, Any]) -> None:
    if batch.format == "csv":
        await session.execute(sql.parse_statement(sql.csv_document(list(batch.columns or []))), params)
        return
    try:
        async with session.begin_nested():
            await session.execute(sql.parse_statement(sql.JSON_DOCUMENT), params)
    except DBAPIError as exc:  # some line is not JSON PostgreSQL accepts: read the others, refuse those
        if getattr(exc.orig, "sqlstate", None) not in _NOT_JSON:
            raise
        bad = await _bad_json_lines(session, batch.id, params["lo"], params["hi"])
        doc = "CASE WHEN l.line_no = ANY(CAST(:bad AS int[])) THEN NULL ELSE l.raw::jsonb END"
        await session.execute(sql.parse_statement(doc), {**params, "bad": bad})


async def _record(session: AsyncSession, params: dict[str, Any]) -> dict[str, uuid.UUID]:
    """Record every fresh event once; a concurrent post of one of them makes the whole batch retry."""
    fresh = {row.event_id: row.id for row in (await session.execute(sql.RECORD_SEQUENTIAL, params)).all()}
    expected = int(await session.scalar(sql.COUNT_TO_RECORD, params) or 0)
    recorded = (await session.execute(sql.RECORD_DECIDED, params)).rowcount  # type: ignore[attr-defined]
    if recorded != expected:
        raise Conflict("bank.concurrent_post", "some of these events were posted concurrently; retry the batch",
                       "部分交易正被同时提交,请重试", extra={"retry_after": 1})
    return fresh


async def _apply_sequential(
    session: AsyncSession, *, batch: BankBatch, principal: Principal, client: BankClient, params: dict[str, Any],
    fresh: dict[str, uuid.UUID],
) -> None:
    rows = (await session.execute(sql.SEQUENTIAL_ROWS, params)).all()
    if not rows:
        return
    items: list[postings.Recorded] = []
    lines: list[int] = []
    invalid: list[int] = []
    for row in rows:
        row_id = fresh.pop(row.event_id, None)  # the first line with a fresh event id owns its row
        try:
            event = BankEvent.model_validate(row.payload)
        except ValidationError:  # the SQL checks passed it; the API's own parser is the last word
            invalid.append(row.line_no)
            if row_id is not None:
                await session.execute(update(BankLoanEvent).where(BankLoanEvent.id == row_id)
                                      .values(status="refused", code="bank.invalid_line"))
            continue
        items.append(postings.Recorded(event, row.body_hash, row_id))
        lines.append(row.line_no)
    results = await postings.apply_recorded(session, principal=principal, client=client, items=items)
    outcomes = [(n, r.status, r.http_status, r.code, r.detail, r.loan_id) for n, r in zip(lines, results, strict=True)]
    outcomes += [(n, "refused", 422, "bank.invalid_line", "line: not a valid bank event", None) for n in invalid]
    await session.execute(_SET_OUTCOMES, {
        "batch": batch.id, "lines": [o[0] for o in outcomes], "statuses": [o[1] for o in outcomes],
        "https": [o[2] for o in outcomes], "codes": [o[3] for o in outcomes], "details": [o[4] for o in outcomes],
        "loans": [o[5] for o in outcomes]})


async def apply_batch(
    session: AsyncSession, *, principal: Principal, client: BankClient, batch: BankBatch,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Evaluate and apply every line of the batch, chunk by chunk in line order; returns counts by outcome
    (and how many events needed the one-at-a-time path, `one_at_a_time`)."""
    counts: dict[str, int] = {}
    # Chunks are 100,000 lines: enough memory for their sorts and hashes (with the default 4 MB every window
    # of the evaluation spilled to disk), and no JIT — the planner's cost of these statements is far above
    # jit_above_cost, and compiling their expressions took 6 s of a 13.5 s evaluation, every chunk.
    await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    await session.execute(text("SET LOCAL jit = off"))
    for lo in range(1, batch.lines + 1, CHUNK_LINES):
        params = _params(batch, client, principal, lo, min(lo + CHUNK_LINES - 1, batch.lines))
        await _parse(session, batch, params)
        # Fresh statistics for the working rows just written, or the planner takes a chunk for one row
        # and joins it with itself in nested loops (quadratic in the chunk).
        await session.execute(text("ANALYZE bank_batch_event"))
        # The evaluation's CTE chain (windows, outer joins) hides its size from the planner, which then
        # joins the chunk's rows to it in nested loops (quadratic: a 100k-line chunk of a bank's daily file
        # ran for over 20 minutes). Only its LATERAL lookups need nested loops; every other join hashes.
        await session.execute(text("SET LOCAL enable_nestloop = off"))
        await session.execute(sql.EVALUATE, params)
        await session.execute(text("SET LOCAL enable_nestloop = on"))
        # And again once the chunk is decided: the statements below select its rows by outcome, which the
        # statistics taken before the evaluation saw as all undecided (estimating one 'applied' row).
        await session.execute(text("ANALYZE bank_batch_event"))
        fresh = await _record(session, params)
        await session.execute(sql.INSERT_REPAYMENTS, params)
        await session.execute(sql.SETTLE_LOANS, params)
        await _apply_sequential(session, batch=batch, principal=principal, client=client, params=params, fresh=fresh)
        if batch.source == "file":
            await session.execute(sql.KEEP_RESULTS, params)
        for status, one_at_a_time, n in (await session.execute(sql.COUNT_OUTCOMES, params)).all():
            counts[status] = counts.get(status, 0) + int(n)
            if one_at_a_time:
                counts["one_at_a_time"] = counts.get("one_at_a_time", 0) + int(n)
        if progress is not None:
            await progress(params["hi"], batch.lines)
    await audit.record(session, principal, action="bank.loan_events", entity="bank_batch", entity_id=batch.id,
                       area_code=client.area_code, after={"source": batch.source, "lines": batch.lines, **counts})
    return counts


async def post_bulk(
    session: AsyncSession, *, principal: Principal, client: BankClient, raw_events: list[dict[str, Any]]
) -> list[BankEventResult]:
    """A bulk request: the events staged, evaluated and applied set-based, answered per event in order."""
    batch = await stage_request(session, client=client, raw_events=raw_events)
    await apply_batch(session, principal=principal, client=client, batch=batch)
    rows = (await session.execute(
        select(BankBatchEvent.event_id, BankBatchEvent.status, BankBatchEvent.http_status, BankBatchEvent.code,
               BankBatchEvent.detail, BankBatchEvent.loan_id)
        .where(BankBatchEvent.batch_id == batch.id).order_by(BankBatchEvent.line_no))).all()
    # The request's working rows are not kept: bank_loan_event and the audit row are the record.
    await session.execute(delete(BankBatchEvent).where(BankBatchEvent.batch_id == batch.id))
    await session.execute(delete(BankBatch).where(BankBatch.id == batch.id))
    return [BankEventResult(event_id=r.event_id or "", status=r.status, http_status=r.http_status, code=r.code,
                            detail=r.detail, loan_id=r.loan_id) for r in rows]
