"""Audit trail: every write records who, role, area, when, what, before and after.

Writing takes no lock and reads nothing: `record` adds one row to the writer's own transaction, so a
change and its audit row commit together or not at all, and concurrent writers never queue behind each
other. Tamper evidence is added afterwards by `fupin.audit.sealer`, which chains committed rows per
county (the way a transparency log sequences entries) and signs checkpoints of each chain's head.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scoped
from fupin.audit.models import AuditEvent
from fupin.auth.principal import Principal


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def county_chain(area_code: str) -> str:
    """The chain an area's events belong to: its 6-digit county prefix (province and platform events
    form chains of their own, e.g. '520000' and '000000')."""
    return area_code[:6]


async def record(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    entity: str,
    entity_id: object,
    area_code: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    result: str = "ok",
) -> None:
    """Add the audit row to the caller's transaction (flushed with the caller's own writes)."""
    area = area_code or principal.area_code
    session.add(AuditEvent(
        occurred_at=datetime.now(UTC),
        actor_id=principal.user_id,
        actor_name=principal.username,
        role=principal.role.value,
        area_code=area,
        county_code=county_chain(area),
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        result=result,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    ))


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def list_events(
    session: AsyncSession,
    *,
    principal: Principal,
    entity: str | None,
    entity_id: str | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEvent]:
    stmt = scoped(select(AuditEvent), principal, AuditEvent.area_code).order_by(AuditEvent.id.desc()).limit(limit)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list((await session.scalars(stmt)).all())
