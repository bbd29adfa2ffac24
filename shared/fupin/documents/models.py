"""Documents and photos of the household archive (一户一档): uploaded files, content-addressed in storage by
their sha256, each linked to one household, member, visit, project step, notice or monitoring step.

The file is stored once per content (the storage key is its sha256); a `document` row is one use of it —
one kind of evidence for one target — and carries the target's area (a village for a household's papers).
A photo uploaded offline before its visit was synced is `unattached` (the uploader's area) until a sync
item links it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Index, Integer, Numeric, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from fupin.base import Base, UUIDPk

Coordinate = Numeric(9, 6)


class Document(UUIDPk, Base):
    __tablename__ = "document"

    area_code: Mapped[str] = mapped_column(String(12), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # DocumentKind
    target_type: Mapped[str] = mapped_column(String(20))  # DocumentTarget, 'unattached' until linked
    target_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    household_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200), default="")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(64))
    # EXIF, when the photo carries it: the local time it was taken (in the business time zone) and where.
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    latitude: Mapped[Decimal | None] = mapped_column(Coordinate)
    longitude: Mapped[Decimal | None] = mapped_column(Coordinate)
    # Evidence checks against the visit it is linked to: photo_other_day, photo_far_from_village.
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list, server_default="{}")
    client_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))  # the offline sync item that linked it
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_document_target", "target_type", "target_id"),
        # The same bytes as the same kind of evidence for the same target are one document (an upload
        # retried without an Idempotency-Key answers the existing row).
        Index("uq_document_target_sha256_kind", "target_type", "target_id", "sha256", "kind", unique=True,
              postgresql_where=text("target_id IS NOT NULL")),
        Index("ix_document_unattached", "uploaded_by", "sha256", postgresql_where=text("target_id IS NULL")),
        Index("ix_document_flagged", "area_code", postgresql_where=text("flags <> '{}'")),
    )


class ArchiveRequirement(Base):
    """The county's list of documents every registered household's archive must hold (一户一档)."""

    __tablename__ = "archive_requirement"

    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)  # the county
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VillageLocation(Base):
    """Where a village is (its committee's office): the reference point for a visit photo's EXIF GPS."""

    __tablename__ = "village_location"

    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    latitude: Mapped[Decimal] = mapped_column(Coordinate)
    longitude: Mapped[Decimal] = mapped_column(Coordinate)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
