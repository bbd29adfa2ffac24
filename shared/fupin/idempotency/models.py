"""Idempotency keys: the first committed answer to a write, kept to be replayed to its retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base


class IdempotencyKey(Base):
    """One row per (caller, key), written in the transaction of the write it answers, so a row exists
    exactly when that write committed. The caller is `user:<uuid>` or `bank:<client id>`; the area is
    the caller's own (RLS, and the distribution column: it leads the primary key)."""

    __tablename__ = "idempotency_key"

    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path, query and body
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[list[Any]] = mapped_column(JSONB)  # [[name, value], ...] of the answer
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_idempotency_key_expires_at", "expires_at"),)
