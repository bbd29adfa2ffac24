"""Audit trail: every write records who, role, area, when, what, before and after, hash-chained."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.audit.models import AuditEvent
from fupin.auth.principal import Principal

GENESIS = "0" * 64
# Serialises appends so each row's predecessor is well defined; held only to commit.
_CHAIN_LOCK = 0x0F0F_A0D1


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | uuid.UUID | date | datetime):
        return str(value) if not isinstance(value, date | datetime) else value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _digest(prev_hash: str, row: dict[str, Any]) -> str:
    body = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _content(ev: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
        "actor_id": str(ev.actor_id) if ev.actor_id else None,
        "actor_name": ev.actor_name,
        "role": ev.role,
        "area_code": ev.area_code,
        "action": ev.action,
        "entity": ev.entity,
        "entity_id": ev.entity_id,
        "result": ev.result,
        "before": ev.before,
        "after": ev.after,
    }


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
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    ev = AuditEvent(
        occurred_at=datetime.now(UTC),
        actor_id=principal.user_id,
        actor_name=principal.username,
        role=principal.role.value,
        area_code=area_code or principal.area_code,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        result=result,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        prev_hash=prev or GENESIS,
        hash="",
    )
    ev.hash = _digest(ev.prev_hash, _content(ev))
    session.add(ev)
    await session.flush()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_id: int | None
    reason: str


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> ChainReport:
    """Recompute every hash in order; an edited row breaks its own hash, a deleted one its successor's link."""
    prev = GENESIS
    last_id = 0
    rows = 0
    while True:
        chunk = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            )
        ).all()
        if not chunk:
            return ChainReport(True, rows, None, "chain intact")
        for ev in chunk:
            rows += 1
            if ev.prev_hash != prev:
                return ChainReport(False, rows, ev.id, "link broken: a row before it was deleted or edited")
            if _digest(ev.prev_hash, _content(ev)) != ev.hash:
                return ChainReport(False, rows, ev.id, "content does not match its hash: row edited")
            prev = ev.hash
            last_id = ev.id


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
    from fupin.areas.scope import scoped

    stmt = scoped(select(AuditEvent), principal, AuditEvent.area_code).order_by(AuditEvent.id.desc()).limit(limit)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list((await session.scalars(stmt)).all())
