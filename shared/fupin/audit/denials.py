"""Refused requests, audited and collapsed: who was refused what, where, how often.

Every 403, every 404 on an id route (the object is another area's, or does not exist: the code does not
ask which, because telling them apart would cost a second, unscoped read on every 404), every failed
login and bank signature and every 429 leaves a trace in `access_denial`.

Why a table of its own and not `audit_event`:
- `audit_event` rows are append-only and sealed into their county's hash chain; collapsing a flood
  means counting up a row while its minute lasts, which a chained row must never allow;
- one chain row per refused request is exactly what a flood must not be able to produce (10,000 probes
  a minute would be 10,000 rows for the sealer to hash and every verifier to read);
- a refused request's own transaction rolls back, so its trace is written in a transaction of its own
  and cannot share the commit-together guarantee that `audit_event` rows give to writes.

Rows are keyed by (county, actor, method, route, code, minute) and upserted: concurrent refusals of
different actors touch different rows and never wait for each other (there is no global row or
counter); only one actor's own concurrent refusals queue on that actor's row, each for one short
statement. Row-level security scopes reads by area like every area-owned table, and the app role may
not delete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from fupin.areas.scope import scoped
from fupin.audit.models import AccessDenial
from fupin.auth.principal import Principal
from fupin.db import set_area_scope

# A caller who proved no identity (a bad password for an unknown user, a bad bank signature) belongs
# to no area: platform-level rows, read by platform-level auditors.
PLATFORM_AREA = "000000000000"
MAX_OBJECTS = 20  # distinct object ids kept per row: enough to show an enumeration, bounded against a flood
MAX_ADDRESSES = 10


@dataclass(frozen=True)
class Denial:
    status: int
    code: str
    method: str
    route: str  # the route template (`/households/{household_id}`), never the raw path
    actor: str  # `user:<uuid>`, `bank:<client id>` or `addr:<client address>`
    actor_id: uuid.UUID | None
    actor_name: str
    role: str  # '' for a caller who proved no identity
    area_code: str
    object_id: str | None
    client_addr: str | None
    at: datetime


def window_of(at: datetime) -> datetime:
    """The minute a denial is counted in."""
    return at.replace(second=0, microsecond=0)


_UPSERT = text("""
INSERT INTO access_denial AS d (county_code, actor, method, route, code, window_start, status, actor_id,
    actor_name, role, area_code, object_ids, client_addrs, count, first_at, last_at)
VALUES (:county, :actor, :method, :route, :code, :window, :status, :actor_id, :actor_name, :role, :area,
    :objects, :addrs, 1, :at, :at)
ON CONFLICT (county_code, actor, method, route, code, window_start) DO UPDATE SET
    count = d.count + 1,
    last_at = greatest(d.last_at, excluded.last_at),
    object_ids = CASE WHEN cardinality(excluded.object_ids) = 0 OR excluded.object_ids[1] = ANY(d.object_ids)
                        OR cardinality(d.object_ids) >= :max_objects
                      THEN d.object_ids ELSE d.object_ids || excluded.object_ids END,
    client_addrs = CASE WHEN cardinality(excluded.client_addrs) = 0 OR excluded.client_addrs[1] = ANY(d.client_addrs)
                          OR cardinality(d.client_addrs) >= :max_addrs
                        THEN d.client_addrs ELSE d.client_addrs || excluded.client_addrs END
""").bindparams(bindparam("objects", type_=ARRAY(String)), bindparam("addrs", type_=ARRAY(String)))


async def record(session: AsyncSession, denial: Denial, *, lock_timeout_ms: int = 2000) -> None:
    """Count `denial` in its minute's row, in the caller's (own, short) transaction.

    The lock timeout bounds how long one actor's flood can make its own refusals wait on its row."""
    await set_area_scope(session, denial.area_code + "%")
    await session.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{lock_timeout_ms}ms"})
    await session.execute(_UPSERT, {
        "county": denial.area_code[:6], "actor": denial.actor[:80], "method": denial.method[:8],
        "route": denial.route[:200], "code": denial.code[:64], "window": window_of(denial.at),
        "status": denial.status, "actor_id": denial.actor_id, "actor_name": denial.actor_name[:80],
        "role": denial.role[:32], "area": denial.area_code,
        "objects": [denial.object_id[:200]] if denial.object_id else [],
        "addrs": [denial.client_addr[:64]] if denial.client_addr else [],
        "at": denial.at, "max_objects": MAX_OBJECTS, "max_addrs": MAX_ADDRESSES,
    })


async def list_denials(
    session: AsyncSession, *, principal: Principal, code: str | None, actor: str | None, since: datetime | None,
    limit: int, offset: int,
) -> list[AccessDenial]:
    """The caller's area's denials, newest minute first."""
    stmt = scoped(select(AccessDenial), principal, AccessDenial.area_code)
    if code:
        stmt = stmt.where(AccessDenial.code == code)
    if actor:
        stmt = stmt.where(AccessDenial.actor == actor)
    if since is not None:
        stmt = stmt.where(AccessDenial.window_start >= since)
    stmt = stmt.order_by(AccessDenial.window_start.desc(), AccessDenial.last_at.desc(), AccessDenial.actor,
                         AccessDenial.route, AccessDenial.code).limit(limit).offset(offset)
    return list((await session.scalars(stmt)).all())
