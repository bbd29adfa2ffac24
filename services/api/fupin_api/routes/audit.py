from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from fupin.audit import denials, service
from fupin.audit.schemas import AccessDenialRead, AuditEventRead
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["audit"])


@router.get("/audit-log", summary="Read the audit log of your area, newest first",
            response_model=Page[AuditEventRead], responses=problem_responses(403))
async def list_audit(
    session: SessionDep,
    principal: Principal = Authorized(Perm.audit_read),
    entity: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,  # a bigint id: larger is a 422, not a 500
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AuditEventRead]:
    rows = await service.list_events(
        session, principal=principal, entity=entity, entity_id=entity_id, before_id=cursor, limit=limit
    )
    items = [AuditEventRead.model_validate(r) for r in rows]
    return Page[AuditEventRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get("/access-denials", summary="Refused requests in your area, collapsed per actor, route, code and minute",
            response_model=Page[AccessDenialRead], responses=problem_responses(403))
async def list_access_denials(
    session: SessionDep,
    principal: Principal = Authorized(Perm.access_denial_read),
    code: Annotated[str | None, Query(max_length=64, description="e.g. auth.forbidden, bank.bad_signature")] = None,
    actor: Annotated[str | None, Query(max_length=80, description="e.g. user:<id>, bank:<client id>")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Only minutes starting at or after this instant "
                                                             "(with its UTC offset)")] = None,
    cursor: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (the previous page's next_cursor)")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AccessDenialRead]:
    """403s, 404s on id routes, failed logins and bank signatures, and 429s. Refusals of callers who proved no
    identity (actor `addr:…`) belong to no area and are read by platform-level auditors."""
    rows = await denials.list_denials(session, principal=principal, code=code, actor=actor, since=since,
                                      limit=limit, offset=cursor)
    items = [AccessDenialRead.model_validate(r) for r in rows]
    return Page[AccessDenialRead](items=items, next_cursor=str(cursor + limit) if len(items) == limit else None)
