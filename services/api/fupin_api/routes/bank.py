"""Bank and credit-coop postings, signed by machine clients (Role.bank)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scope_pattern
from fupin.auth.permissions import Perm, require
from fupin.auth.principal import Principal
from fupin.db import set_area_scope
from fupin.jobs import JobRun
from fupin.loans import bank_batch, bank_fast, bank_files, postings
from fupin.loans.models import BankBatch, BankClient
from fupin.loans.schemas import (
    BankClientCreate,
    BankClientRotate,
    BankClientSecretRead,
    BankEvent,
    BankEventBatch,
    BankEventResults,
    BankFileRead,
    BankLineResult,
    BankLineResults,
)
from fupin_api import metrics
from fupin_api.deps import Authorized, SessionDep, SettingsDep
from fupin_api.idempotency import WriteRoute, body_read, claim_for, claim_streamed, identifies_caller
from fupin_api.problems import problem_responses
from fupin_api.throttle import refuse_failed_signers

router = APIRouter(route_class=WriteRoute, tags=["bank"])


def credential_cache(request: Request) -> postings.CredentialCache:
    """The process's cache of bank credentials (`bank_credentials_cache_seconds`), made on first use."""
    state = request.app.state
    cache: postings.CredentialCache | None = getattr(state, "bank_credentials", None)
    if cache is None:
        cache = state.bank_credentials = postings.CredentialCache(state.settings.bank_credentials_cache_seconds)
    return cache


async def _signed(request: Request, session: AsyncSession, client_id: str | None, timestamp: str | None,
                  signature: str | None) -> tuple[BankClient, Principal]:
    """The verified, admitted and counted caller; `session` is used only when the client's credentials
    must be read (not cached, or the signature did not match the cached secrets)."""
    await refuse_failed_signers(request)
    body = await request.body()
    client, principal = await postings.authenticate(session, client_id=client_id, timestamp=timestamp,
                                                    signature=signature, body=body, cache=credential_cache(request))
    require(principal.role, Perm.loan_event_post)
    request.state.principal = principal
    await throttle_bank(request, client)
    return client, principal


@identifies_caller
async def bank_caller(
    request: Request, session: SessionDep,
    x_fupin_client: Annotated[str | None, Header()] = None,
    x_fupin_timestamp: Annotated[str | None, Header()] = None,
    x_fupin_signature: Annotated[str | None, Header()] = None,
) -> tuple[BankClient, Principal]:
    client, principal = await _signed(request, session, x_fupin_client, x_fupin_timestamp, x_fupin_signature)
    await set_area_scope(session, scope_pattern(principal))
    await claim_for(request, session, caller=f"bank:{client.client_id}", area_code=principal.area_code)
    return client, principal


@identifies_caller
async def bank_poster(
    request: Request, session: SessionDep,
    x_fupin_client: Annotated[str | None, Header()] = None,
    x_fupin_timestamp: Annotated[str | None, Header()] = None,
    x_fupin_signature: Annotated[str | None, Header()] = None,
) -> tuple[BankClient, Principal]:
    """`bank_caller` for `POST /bank/loan-events`: the session is scoped (and an `Idempotency-Key` claimed)
    only when the post will use it; a single repayment without a key goes the fast path and leaves it unused."""
    client, principal = await _signed(request, session, x_fupin_client, x_fupin_timestamp, x_fupin_signature)
    if getattr(request.state, "idempotency_key", None) is not None:
        await _scope(request, session, principal)
        await claim_for(request, session, caller=f"bank:{client.client_id}", area_code=principal.area_code)
    return client, principal


async def _scope(request: Request, session: AsyncSession, principal: Principal) -> None:
    if not getattr(request.state, "bank_scoped", False):
        await set_area_scope(session, scope_pattern(principal))
        request.state.bank_scoped = True


async def throttle_bank(request: Request, client: BankClient) -> None:
    """Per verified client: a caller who cannot sign cannot spend a bank's allowance (bad signatures are
    refused, audited and counted against their address and claimed client before this point)."""
    throttle = request.app.state.throttle
    await throttle.hit("bank.throttled", [(throttle.bank_client, client.client_id)])


@router.post(
    "/bank/loan-events",
    summary="Post disbursements, repayments and reversals (one event or up to 1,000), HMAC-signed",
    response_model=BankEventResults, responses=problem_responses(400, 409, 429),
)
async def post_loan_events(
    body: BankEvent | BankEventBatch, request: Request, response: Response, session: SessionDep,
    caller: tuple[BankClient, Principal] = Depends(bank_poster),
) -> BankEventResults | Response:
    """Headers: `X-Fupin-Client`, `X-Fupin-Timestamp` (unix seconds, ±300 s) and `X-Fupin-Signature`, the hex
    HMAC-SHA256 of `f"{timestamp}.{raw body}"` (several, space separated, while a secret rotates)."""
    client, principal = caller
    raw: Any = json.loads(await request.body())  # the exact event objects, for the idempotency hash
    if isinstance(body, BankEvent) and bank_fast.takes(body) and getattr(request.state, "idempotency", None) is None:
        # One repayment: its own transaction on a raw connection, committed before this answer is built.
        settings = request.app.state.settings
        result = await bank_fast.post_repayment(request.app.state.engine, principal=principal, client=client,
                                                raw=raw, event=body, timeout_ms=settings.db_statement_timeout_ms)
        metrics.BANK_EVENTS.labels(result.status).inc()
        return Response(BankEventResults(results=[result]).model_dump_json(), status_code=result.http_status,
                        media_type="application/json")
    await _scope(request, session, principal)
    if isinstance(body, BankEvent):
        results = await postings.post_events(session, principal=principal, client=client, raw_events=[raw],
                                             events=[body])
        response.status_code = results[0].http_status
    else:
        results = await bank_batch.post_bulk(session, principal=principal, client=client, raw_events=raw["events"])
    metrics.count_bank_events_after_commit(session, (r.status for r in results))
    return BankEventResults(results=results)


@identifies_caller
async def bank_stream_caller(
    request: Request, session: SessionDep,
    x_fupin_client: Annotated[str | None, Header()] = None,
    x_fupin_timestamp: Annotated[str | None, Header()] = None,
    x_fupin_signature: Annotated[str | None, Header()] = None,
) -> tuple[BankClient, Principal, postings.SignedBody]:
    """Like `bank_caller`, for a body too large to read before checking: the caller feeds the check."""
    await refuse_failed_signers(request)
    client, principal, check = await postings.open_signed(
        session, client_id=x_fupin_client, timestamp=x_fupin_timestamp, signature=x_fupin_signature)
    require(principal.role, Perm.loan_event_post)
    request.state.principal = principal
    await throttle_bank(request, client)
    await set_area_scope(session, scope_pattern(principal))

    async def drain() -> str:
        # A retry of a stored upload: read it all under the signature before anything is replayed.
        digest = hashlib.sha256()
        async for chunk in request.stream():
            check.update(chunk)
            digest.update(chunk)
        check.verify()
        return digest.hexdigest()

    await claim_streamed(request, session, caller=f"bank:{client.client_id}", area_code=principal.area_code,
                         drain=drain)
    return client, principal, check


FILE_BODY = {
    "content": {
        "text/csv": {"schema": {"type": "string"}, "example": (
            "event_id,kind,application_id,external_id,amount,on\n"
            "R-20261130-0001,repayment,,RCC-2026-000123,1500.00,2026-11-30\n")},
        "application/x-ndjson": {"schema": {"type": "string"}, "example": (
            '{"event_id":"R-20261130-0001","kind":"repayment","external_id":"RCC-2026-000123",'
            '"amount":"1500.00","on":"2026-11-30"}\n')},
    },
    "required": True,
}


@router.post(
    "/bank/loan-event-files",
    summary="Upload a daily file of loan events (CSV or JSON lines, up to 1,000,000 events), HMAC-signed",
    response_model=BankFileRead, status_code=202, responses=problem_responses(400, 409, 413, 429),
    openapi_extra={"requestBody": FILE_BODY},
)
async def upload_loan_event_file(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep,
    caller: tuple[BankClient, Principal, postings.SignedBody] = Depends(bank_stream_caller),
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> BankFileRead:
    """The signature covers the whole file (`X-Fupin-Signature` = hex HMAC-SHA256 of `f"{timestamp}.{file}"`).
    `Content-Type: text/csv` (a header line naming the fields, comma separated; no field may contain a comma)
    or `application/x-ndjson` (one JSON event per line, as `POST /bank/loan-events` takes). Every event is
    answered as a one-by-one post of the same events in file order would be answered; the file is applied by
    the worker in one transaction (all or nothing). Answers 202 with `Location` of the file; poll it for
    progress, then read the per-line results."""
    client, principal, check = caller
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}.get(media, "")

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            check.update(chunk)
            yield chunk

    limits = bank_files.FileLimits(max_bytes=settings.bank_file_max_bytes, max_lines=settings.bank_file_max_lines)
    batch, run = await bank_files.receive_file(session, client=client, principal=principal, chunks=chunks(),
                                               fmt=fmt, filename=filename, limits=limits)
    check.verify()  # a bad signature rolls the whole upload back
    if batch.sha256:  # the sha256 of the raw file, as `bank_stream_caller`'s drain computes it
        body_read(request, batch.sha256)
    response.headers["Location"] = f"/bank/loan-event-files/{batch.id}"
    return _file_read(batch, run, None, None)


def _file_read(batch: BankBatch, run: JobRun | None, done: int | None, total: int | None) -> BankFileRead:
    return BankFileRead(
        id=batch.id, format=batch.format, filename=batch.filename, sha256=batch.sha256, bytes=batch.bytes,
        lines=batch.lines, status=batch.status, job_id=run.id if run else None, job_status=run.status if run else None,
        progress_done=done, progress_total=total, counts=batch.counts,
        error=batch.error or (run.last_error if run and run.status == "dead" else None), received_at=batch.received_at,
        finished_at=batch.finished_at, results_url=f"/bank/loan-event-files/{batch.id}/results")


@router.get("/bank/loan-event-files/{file_id}", summary="A daily file's status, progress and counts (HMAC-signed)",
            response_model=BankFileRead, responses=problem_responses(404, 429))
async def get_loan_event_file(
    file_id: uuid.UUID, session: SessionDep, caller: tuple[BankClient, Principal] = Depends(bank_caller),
) -> BankFileRead:
    """Sign the empty body: `X-Fupin-Signature` = hex HMAC-SHA256 of `f"{timestamp}."`."""
    batch, run = await bank_files.get_file(session, client=caller[0], batch_id=file_id)
    return _file_read(batch, run[0] if run else None, run[1] if run else None, run[2] if run else None)


@router.get("/bank/loan-event-files/{file_id}/results",
            summary="Per-line results of a processed daily file, in line order (HMAC-signed)",
            response_model=BankLineResults, responses=problem_responses(404, 429))
async def get_loan_event_file_results(
    file_id: uuid.UUID, session: SessionDep, caller: tuple[BankClient, Principal] = Depends(bank_caller),
    cursor: Annotated[int, Query(ge=0, description="the last line_no of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> BankLineResults:
    """Empty until the file is done. Each item answers one line as a one-by-one post would have."""
    batch, _ = await bank_files.get_file(session, client=caller[0], batch_id=file_id)
    rows = await bank_files.results(session, batch=batch, after=cursor, limit=limit)
    items = [BankLineResult.model_validate(r) for r in rows]
    return BankLineResults(items=items, next_cursor=str(items[-1].line_no) if len(items) == limit else None)


@router.post("/bank/clients", summary="Register a machine client for a bank or credit coop (secret shown once)",
             response_model=BankClientSecretRead, status_code=201, responses=problem_responses(403, 404, 409))
async def create_bank_client(body: BankClientCreate, session: SessionDep,
                             principal: Principal = Authorized(Perm.bank_client_write)) -> BankClientSecretRead:
    client, secret = await postings.register_client(session, principal=principal, client_id=body.client_id,
                                                    institution_code=body.institution_code, area_code=body.area_code)
    return BankClientSecretRead(client_id=client.client_id, institution_code=client.institution_code,
                                area_code=client.area_code, secret=secret)


@router.post("/bank/clients/{client_id}/secrets", summary="Rotate a client's HMAC secret (old one kept for an overlap)",
             response_model=BankClientSecretRead, status_code=201, responses=problem_responses(403, 404))
async def rotate_bank_secret(client_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{3,64}$")],
                             body: BankClientRotate, request: Request, session: SessionDep,
                             principal: Principal = Authorized(Perm.bank_client_write)) -> BankClientSecretRead:
    client, secret, until = await postings.rotate_secret(session, principal=principal, client_id=client_id,
                                                         overlap_hours=body.overlap_hours)
    credential_cache(request).forget(client_id)  # this process reads the client's secrets afresh
    return BankClientSecretRead(client_id=client.client_id, institution_code=client.institution_code,
                                area_code=client.area_code, secret=secret, previous_valid_until=until)
