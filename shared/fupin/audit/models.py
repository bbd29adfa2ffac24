from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base


class AuditEvent(Base):
    """Append-only record of every write (denials go to `access_denial`), written in the writer's own transaction
    with no chain fields; the sealer later gives it its place in its county's hash chain."""

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("county_code", "seq"),
        Index("ix_audit_event_unsealed", "county_code", "id", postgresql_where=text("seq IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    actor_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    # The chain (and, on Citus, the distribution column): the 6-digit county prefix of area_code.
    county_code: Mapped[str] = mapped_column(String(6))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    result: Mapped[str] = mapped_column(String(16), default="ok")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Filled in once, by the sealer: position in the county chain, the predecessor's hash, this row's hash.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditChainHead(Base):
    """Where each county's chain ends: the sealer's starting point (locked by the sealer only)."""

    __tablename__ = "audit_chain_head"

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditCheckpoint(Base):
    """A signed statement "county C's chain had hash H at position N", with a key kept outside the
    database; the app role may only insert, so deleting or rewriting sealed rows is detected."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (Index("ix_audit_checkpoint_county_code_seq", "county_code", "seq"),)

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))


class AccessDenial(Base):
    """Refused requests, collapsed: one row per (county, actor, method, route, code, minute) with a count.

    Why not `audit_event` (see `fupin.audit.denials`): a denial row is counted up while its minute lasts,
    and a sealed chain row can never change; and one row per refused request is what a flood must not get."""

    __tablename__ = "access_denial"
    __table_args__ = (Index("ix_access_denial_area_code_window_start", "area_code", "window_start"),)

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    # `user:<uuid>`, `bank:<client id>`, or `addr:<client address>` for a caller who proved no identity.
    actor: Mapped[str] = mapped_column(String(80), primary_key=True)
    method: Mapped[str] = mapped_column(String(8), primary_key=True)
    route: Mapped[str] = mapped_column(String(200), primary_key=True)  # the template, never the raw path
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    actor_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(12))
    # The first few distinct objects and addresses of the window (capped: an enumeration shows, a flood cannot grow a row).
    object_ids: Mapped[list[str]] = mapped_column(ARRAY(String(200)))
    client_addrs: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
