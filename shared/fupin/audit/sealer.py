"""Sealing and verifying the audit chains, off the request path.

Each county has its own chain (`audit_event.county_code`). The sealer takes a county's committed,
unsealed rows in id order, gives them the next positions (`seq`, gap-free) and hashes
(sha256 over the predecessor's hash, the position and the row's stored content) in one UPDATE, moves
the chain head, and inserts an HMAC-signed checkpoint of the new head into `audit_checkpoint`, where
the app role may only insert. The checkpoint key lives in settings, never in the database.

What `verify` detects: an edited row (its hash), a deleted or reordered row (a gap or a broken link),
rewritten chain fields (the next link, or a checkpoint that no longer matches), and deleted or
truncated newest rows (a checkpoint naming a position that no longer exists). Only sealers lock the
chain head, one county at a time; writers never do, and on Citus each county's chain, head and
checkpoints live on that county's node.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import BigInteger, String

from fupin.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from fupin.db import ALL_AREAS, set_area_scope

GENESIS = "0" * 64
SEAL_BATCH = 10_000
# Rows as plain tuples: sealing and verifying a million rows must not fill the ORM identity map.
_COLUMNS = tuple(AuditEvent.__table__.c)


def key_id(key: str) -> str:
    """A fingerprint naming which key signed a checkpoint, without revealing it."""
    return hashlib.sha256(b"fupin-audit-key:" + key.encode()).hexdigest()[:16]


def _sign(key: str, county: str, seq: int, head_hash: str, signed_at: datetime) -> str:
    message = f"fupin-audit-checkpoint|v1|{county}|{seq}|{head_hash}|{signed_at.astimezone(UTC).isoformat()}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def _content(ev: Any) -> str:
    """The stored content a hash covers, canonical JSON of what the database holds."""
    return json.dumps({
        "id": ev.id,
        "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
        "actor_id": str(ev.actor_id) if ev.actor_id else None,
        "actor_name": ev.actor_name,
        "role": ev.role,
        "area_code": ev.area_code,
        "county_code": ev.county_code,
        "action": ev.action,
        "entity": ev.entity,
        "entity_id": ev.entity_id,
        "result": ev.result,
        "before": ev.before,
        "after": ev.after,
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, seq: int, ev: Any) -> str:
    """`ev`: an audit row (any object with the audit_event columns as attributes)."""
    return hashlib.sha256(f"{prev_hash}|{ev.county_code}|{seq}|{_content(ev)}".encode()).hexdigest()


_SET_SEALS = text(
    "UPDATE audit_event AS a SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, sealed_at = :now "
    "FROM unnest(:ids, :seqs, :prevs, :hashes) AS v(id, seq, prev_hash, hash) "
    "WHERE a.county_code = :county AND a.id = v.id AND a.seq IS NULL"
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)), bindparam("seqs", type_=ARRAY(BigInteger)),
    bindparam("prevs", type_=ARRAY(String)), bindparam("hashes", type_=ARRAY(String)),
)


async def seal_chain(session: AsyncSession, *, county: str, key: str, limit: int = SEAL_BATCH) -> int:
    """Seal up to `limit` committed unsealed rows of one county chain; returns how many.

    The chain head row is the lock: two sealers of the same county run one after the other, sealers of
    different counties in parallel, and writers never touch it."""
    now = datetime.now(UTC)
    await session.execute(insert(AuditChainHead).values(county_code=county, seq=0, hash=GENESIS, sealed_at=now)
                          .on_conflict_do_nothing(index_elements=["county_code"]))
    head = (await session.execute(select(AuditChainHead.seq, AuditChainHead.hash)
                                  .where(AuditChainHead.county_code == county).with_for_update())).one()
    rows = (await session.execute(
        select(*_COLUMNS).where(AuditEvent.county_code == county, AuditEvent.seq.is_(None))
        .order_by(AuditEvent.id).limit(limit)
    )).all()
    if not rows:
        return 0
    seq, prev = int(head.seq), str(head.hash)
    ids: list[int] = []
    seqs: list[int] = []
    prevs: list[str] = []
    hashes: list[str] = []
    for ev in rows:
        seq += 1
        digest = chain_hash(prev, seq, ev)
        ids.append(ev.id)
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(digest)
        prev = digest
    await session.execute(_SET_SEALS, {"now": now, "county": county, "ids": ids, "seqs": seqs, "prevs": prevs,
                                       "hashes": hashes})
    await session.execute(update(AuditChainHead).where(AuditChainHead.county_code == county)
                          .values(seq=seq, hash=prev, sealed_at=now))
    session.add(AuditCheckpoint(county_code=county, seq=seq, hash=prev, signed_at=now, key_id=key_id(key),
                                signature=_sign(key, county, seq, prev, now)))
    await session.flush()
    return len(rows)


async def unsealed_chains(session: AsyncSession) -> list[str]:
    return list((await session.scalars(
        select(AuditEvent.county_code).where(AuditEvent.seq.is_(None)).distinct()
    )).all())


async def seal_pending(
    sessionmaker: async_sessionmaker[AsyncSession], *, key: str, counties: Sequence[str] | None = None
) -> int:
    """Seal everything committed so far, one short transaction per county batch; returns rows sealed."""
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        todo = list(counties) if counties is not None else await unsealed_chains(session)
    sealed = 0
    for county in todo:
        while True:
            async with sessionmaker() as session, session.begin():
                await set_area_scope(session, ALL_AREAS)
                n = await seal_chain(session, county=county, key=key)
            sealed += n
            if n < SEAL_BATCH:
                break
    return sealed


@dataclass(frozen=True)
class ChainProblem:
    county_code: str
    seq: int | None
    event_id: int | None
    reason: str


@dataclass
class AuditReport:
    ok: bool = True
    rows: int = 0
    chains: int = 0
    checkpoints: int = 0
    unsealed: int = 0
    oldest_unsealed_seconds: float | None = None
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def first_bad_id(self) -> int | None:
        return next((p.event_id for p in self.problems if p.event_id is not None), None)

    @property
    def reason(self) -> str:
        return self.problems[0].reason if self.problems else "every chain intact"

    def fail(self, problem: ChainProblem) -> None:
        self.ok = False
        self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "chains": self.chains, "checkpoints": self.checkpoints,
                "unsealed": self.unsealed, "oldest_unsealed_seconds": self.oldest_unsealed_seconds,
                "first_bad_id": self.first_bad_id, "reason": self.reason,
                "problems": [p.__dict__ for p in self.problems[:50]]}


async def seal_lag(session: AsyncSession, *, county: str | None = None) -> tuple[int, float | None]:
    """(rows not yet sealed, age in seconds of the oldest of them)."""
    stmt = select(func.count(), func.extract("epoch", func.now() - func.min(AuditEvent.occurred_at))).where(
        AuditEvent.seq.is_(None))
    if county is not None:
        stmt = stmt.where(AuditEvent.county_code == county)
    n, age = (await session.execute(stmt)).one()
    return int(n), float(age) if age is not None else None


async def _verify_rows(session: AsyncSession, county: str, report: AuditReport, batch: int = 5000) -> None:
    prev, expected = GENESIS, 1
    while True:
        chunk = (await session.execute(
            select(*_COLUMNS).where(AuditEvent.county_code == county, AuditEvent.seq >= expected)
            .order_by(AuditEvent.seq).limit(batch)
        )).all()
        if not chunk:
            return
        for ev in chunk:
            report.rows += 1
            assert ev.seq is not None
            if ev.seq != expected:
                report.fail(ChainProblem(county, expected, ev.id, f"rows {expected}..{ev.seq - 1} are missing"))
                return
            if ev.prev_hash != prev:
                report.fail(ChainProblem(county, ev.seq, ev.id, "link broken: the row before it was changed"))
                return
            if chain_hash(prev, ev.seq, ev) != ev.hash:
                report.fail(ChainProblem(county, ev.seq, ev.id, "content does not match its hash: row edited"))
                return
            prev, expected = str(ev.hash), expected + 1


async def _verify_checkpoints(session: AsyncSession, county: str, key: str, report: AuditReport) -> None:
    rows = (await session.execute(
        select(AuditCheckpoint, AuditEvent.hash, AuditEvent.id)
        .outerjoin(AuditEvent, (AuditEvent.county_code == AuditCheckpoint.county_code)
                   & (AuditEvent.seq == AuditCheckpoint.seq))
        .where(AuditCheckpoint.county_code == county).order_by(AuditCheckpoint.id)
    )).all()
    mine = key_id(key)
    for cp, row_hash, row_id in rows:
        report.checkpoints += 1
        if cp.key_id != mine or not hmac.compare_digest(
                cp.signature, _sign(key, county, cp.seq, cp.hash, cp.signed_at)):
            report.fail(ChainProblem(county, cp.seq, None, f"checkpoint {cp.id} has no valid signature"))
        elif row_hash is None:
            report.fail(ChainProblem(county, cp.seq, None,
                                     f"checkpoint {cp.id} names position {cp.seq}, which no longer exists: "
                                     "rows were deleted or truncated"))
        elif row_hash != cp.hash:
            report.fail(ChainProblem(county, cp.seq, row_id, f"checkpoint {cp.id} does not match the chain: "
                                                             "sealed rows were rewritten"))


async def verify(session: AsyncSession, *, key: str, county: str | None = None) -> AuditReport:
    """Check every chain (or one county's) row by row and against every signed checkpoint."""
    report = AuditReport()
    chains = [county] if county is not None else list((await session.scalars(
        select(AuditEvent.county_code).distinct().union(select(AuditCheckpoint.county_code).distinct())
    )).all())
    for chain in sorted(set(chains)):
        report.chains += 1
        await _verify_rows(session, chain, report)
        await _verify_checkpoints(session, chain, key, report)
    report.unsealed, report.oldest_unsealed_seconds = await seal_lag(session, county=county)
    return report
