from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.ledger import queries
from fupin.ledger.schemas import AccountDetail, AccountRead, LedgerCheckRead
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["ledger"])


@router.get("/ledger/accounts", summary="Ledger accounts in your area with balances",
            response_model=Page[AccountRead], responses=problem_responses(403))
async def list_accounts(
    session: SessionDep,
    principal: Principal = Authorized(Perm.ledger_read),
    holder_kind: Annotated[str | None, Query(max_length=32)] = None,
    purpose: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=120)] = None,
) -> Page[AccountRead]:
    rows = await queries.list_accounts(session, principal=principal, holder_kind=holder_kind, purpose=purpose,
                                       limit=limit, after=cursor)
    items = [AccountRead.model_validate(a) for a in rows]
    return Page[AccountRead](items=items, next_cursor=items[-1].code if len(items) == limit else None)


@router.get("/ledger/accounts/{account_id}", summary="One account: balance and its latest entries",
            response_model=AccountDetail, responses=problem_responses(403, 404))
async def get_account(
    account_id: uuid.UUID, session: SessionDep, principal: Principal = Authorized(Perm.ledger_read)
) -> AccountDetail:
    return await queries.get_account(session, principal=principal, account_id=account_id)


@router.get("/ledger/check", summary="Prove the ledger: Σdebit = Σcredit, balances = lines, no fund below zero",
            response_model=LedgerCheckRead, responses=problem_responses(403))
async def check(session: SessionDep, principal: Principal = Authorized(Perm.ledger_check)) -> LedgerCheckRead:
    return await queries.check(session, principal=principal)
