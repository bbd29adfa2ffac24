"""Idempotency keys (the semantics payment APIs use, after Stripe): a write sent with `Idempotency-Key`
is answered once; its retries get the stored answer.

- The answer is stored in the transaction of the write it acknowledges, so a stored answer exists exactly
  when the write committed. A refused or failed write stores nothing (it changed nothing): its retry runs
  again and is answered afresh.
- Keys are per caller (a user, or a bank client) and live `idempotency_key_hours`; an expired key is
  treated as never used, and the worker deletes expired rows (`purge_expired`).
- The same key with another request (method, path, query or body) is refused (422
  `idempotency.key_reused`); a retry while the first request still runs is refused (409
  `idempotency.in_flight`, Retry-After 1) — the key is held by a transaction-scoped advisory lock on
  (caller, key), taken without waiting, so no request ever queues behind another and no lock is shared
  by different keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.errors import Conflict, RuleViolation
from fupin.idempotency.models import IdempotencyKey

PURGE_BATCH = 5000


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


def _in_flight() -> Conflict:
    return Conflict("idempotency.in_flight", "a request with this Idempotency-Key is still being processed; retry",
                    "使用该幂等键的请求正在处理中,请稍后重试", extra={"retry_after": 1})


@dataclass(frozen=True)
class Held:
    fingerprint: str
    answer: StoredAnswer


def key_reused() -> RuleViolation:
    return RuleViolation("idempotency.key_reused", "this Idempotency-Key was used for a different request; use a new key",
                         "该幂等键已用于另一个不同的请求,请使用新的幂等键")


async def hold(session: AsyncSession, *, area_code: str, caller: str, key: str) -> Held | None:
    """Hold `key` for this transaction (409 while another running request holds it) and return what an
    earlier committed write with it stored, if anything."""
    # One lock per (caller, key): a caller is `user:<uuid>` or `bank:<id>`, without spaces.
    got = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"{caller} {key}", 0))))
    if not got:
        raise _in_flight()
    # A statement of its own, after the lock: READ COMMITTED takes a snapshot per statement, so this one
    # sees a write with this key that committed (releasing the lock) just before we took it.
    row = (await session.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.status_code, IdempotencyKey.headers, IdempotencyKey.body)
        .where(IdempotencyKey.area_code == area_code, IdempotencyKey.caller == caller, IdempotencyKey.key == key,
               IdempotencyKey.expires_at > func.now())
    )).first()
    if row is None:
        return None
    return Held(row.fingerprint,
                StoredAnswer(row.status_code, [(str(k), str(v)) for k, v in row.headers], bytes(row.body)))


async def claim(
    session: AsyncSession, *, area_code: str, caller: str, key: str, fingerprint: str
) -> StoredAnswer | None:
    """Hold `key` for this transaction and return the answer stored for it, if an earlier write with the
    same request committed; None when the request is to run. Refuses a key held by a running request
    (409) and a key used for another request (422)."""
    held = await hold(session, area_code=area_code, caller=caller, key=key)
    if held is None:
        return None
    if held.fingerprint != fingerprint:
        raise key_reused()
    return held.answer


async def store(
    session: AsyncSession, *, area_code: str, caller: str, key: str, fingerprint: str, method: str, path: str,
    answer: StoredAnswer, ttl_hours: int,
) -> None:
    """Record the answer in the caller's transaction (so it commits with the write or not at all). An
    expired row of the same key is replaced; a live one cannot exist while `claim`'s lock is held."""
    values: dict[str, Any] = {
        "area_code": area_code, "caller": caller, "key": key, "fingerprint": fingerprint, "method": method,
        "path": path[:500], "status_code": answer.status_code, "headers": [list(h) for h in answer.headers],
        "body": answer.body, "expires_at": func.now() + timedelta(hours=ttl_hours),
    }
    stmt = insert(IdempotencyKey).values(values)
    upsert = stmt.on_conflict_do_update(
        index_elements=["area_code", "caller", "key"],
        set_={k: stmt.excluded[k] for k in values if k not in ("area_code", "caller", "key")}
        | {"created_at": func.now()},
        where=IdempotencyKey.expires_at <= func.now(),
    ).returning(IdempotencyKey.key)
    if await session.scalar(upsert) is None:  # a live row: only a lock-hash collision's partner could get here
        raise _in_flight()


async def purge_expired(session: AsyncSession, *, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` expired keys (by primary key, so it stays one routed statement per shard)."""
    result = await session.execute(text(
        "DELETE FROM idempotency_key WHERE (area_code, caller, key) IN ("
        " SELECT area_code, caller, key FROM idempotency_key WHERE expires_at <= now() LIMIT :n)"
    ), {"n": batch})
    return int(result.rowcount)  # type: ignore[attr-defined]
