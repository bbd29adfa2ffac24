from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fupin.audit import service
from fupin.audit.schemas import AuditEventRead
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
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AuditEventRead]:
    rows = await service.list_events(
        session, principal=principal, entity=entity, entity_id=entity_id, before_id=cursor, limit=limit
    )
    items = [AuditEventRead.model_validate(r) for r in rows]
    return Page[AuditEventRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)
