"""Bank and credit-coop postings, signed by machine clients (Role.bank)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from sqlalchemy import text

from fupin.areas.scope import scope_pattern
from fupin.auth.permissions import Perm, require
from fupin.auth.principal import Principal
from fupin.loans import postings
from fupin.loans.models import BankClient
from fupin.loans.schemas import (
    BankClientCreate,
    BankClientRotate,
    BankClientSecretRead,
    BankEvent,
    BankEventBatch,
    BankEventResults,
)
from fupin_api import metrics
from fupin_api.deps import Authorized, SessionDep
from fupin_api.problems import problem_responses

router = APIRouter(tags=["bank"])


async def bank_caller(
    request: Request, session: SessionDep,
    x_fupin_client: Annotated[str | None, Header()] = None,
    x_fupin_timestamp: Annotated[str | None, Header()] = None,
    x_fupin_signature: Annotated[str | None, Header()] = None,
) -> tuple[BankClient, Principal]:
    body = await request.body()
    client, principal = await postings.authenticate(session, client_id=x_fupin_client, timestamp=x_fupin_timestamp,
                                                    signature=x_fupin_signature, body=body)
    require(principal.role, Perm.loan_event_post)
    await session.execute(text("SELECT set_config('fupin.scope', :s, true)"), {"s": scope_pattern(principal)})
    request.state.principal = principal
    return client, principal


@router.post(
    "/bank/loan-events",
    summary="Post disbursements, repayments and reversals (one event or up to 1,000), HMAC-signed",
    response_model=BankEventResults, responses=problem_responses(400, 409),
)
async def post_loan_events(
    body: BankEvent | BankEventBatch, request: Request, response: Response, session: SessionDep,
    caller: tuple[BankClient, Principal] = Depends(bank_caller),
) -> BankEventResults:
    """Headers: `X-Fupin-Client`, `X-Fupin-Timestamp` (unix seconds, ±300 s) and `X-Fupin-Signature`, the hex
    HMAC-SHA256 of `f"{timestamp}.{raw body}"` (several, space separated, while a secret rotates)."""
    client, principal = caller
    raw: Any = json.loads(await request.body())  # the exact event objects, for the idempotency hash
    single = isinstance(body, BankEvent)
    events = [body] if isinstance(body, BankEvent) else body.events
    raws = [raw] if single else raw["events"]
    results = await postings.post_events(session, principal=principal, client=client, raw_events=raws, events=events)
    metrics.count_bank_events_after_commit(session, (r.status for r in results))
    if single:
        response.status_code = results[0].http_status
    return BankEventResults(results=results)


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
                             body: BankClientRotate, session: SessionDep,
                             principal: Principal = Authorized(Perm.bank_client_write)) -> BankClientSecretRead:
    client, secret, until = await postings.rotate_secret(session, principal=principal, client_id=client_id,
                                                         overlap_hours=body.overlap_hours)
    return BankClientSecretRead(client_id=client.client_id, institution_code=client.institution_code,
                                area_code=client.area_code, secret=secret, previous_valid_until=until)
