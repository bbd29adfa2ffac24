"""Uploading, linking and downloading documents (一户一档: 「对贫困户户口本、粮补卡、医疗服务证及养殖产业情况等
能反映贫困户信息的依据材料拍照留存」, 000 L19).

- An upload is checked before anything is kept: not empty, not past `document_max_bytes`, a type allowed
  by its content (magic bytes; a declared type that disagrees is refused), an image that decodes. A
  refused upload leaves neither a row nor an object.
- Bytes are stored once per content (key = sha256); the same bytes as the same kind for the same target
  answer the existing document.
- A document takes its target's area: reads, downloads and links are scoped like the target (404 across
  areas); ID-bearing papers are downloaded only by the roles that see ID numbers; every download is audited.
- A visit photo is checked against its visit (EXIF day, distance from the village): flagged, never refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import in_scope, scoped
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.documents import images, rules
from fupin.documents.models import Document, VillageLocation
from fupin.documents.rules import DocumentTarget
from fupin.documents.storage import CHUNK, Storage
from fupin.errors import DomainError, Forbidden, RuleViolation, not_found
from fupin.households.models import Member
from fupin.monitoring.models import MonitoredHousehold, MonitoringStep
from fupin.pairing import visits as visit_service
from fupin.pairing.access import household_filter, is_cadre, load_household, own_households
from fupin.pairing.models import Pairing, Visit
from fupin.projects.models import ProjectNotice, ProjectTransition
from fupin.settings import Settings

HEAD = 64 * 1024  # a JPEG's EXIF segment is at most 64 KiB and comes first


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    thumbnail_px: int
    max_km: Decimal
    tz: str

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.document_max_bytes, settings.thumbnail_px, settings.evidence_max_km, settings.timezone)


@dataclass(frozen=True)
class Target:
    type: DocumentTarget
    id: uuid.UUID | None
    area_code: str
    household_id: uuid.UUID | None
    visit: Visit | None = None


class UnsupportedType(DomainError):
    status = 415
    code = "document.unsupported_type"


def _too_large(limit: int) -> DomainError:
    return DomainError("document.too_large", f"the file is larger than {limit} bytes",
                       f"文件超过 {limit} 字节上限", status=413, extra={"max_bytes": limit})


async def resolve_target(
    session: AsyncSession, *, principal: Principal, target_type: DocumentTarget, target_id: uuid.UUID | None
) -> Target:
    """The target's area and household, read through the caller's scope (404 when out of it)."""
    if target_type is DocumentTarget.unattached:
        return Target(target_type, None, principal.area_code, None)
    if target_id is None:
        raise RuleViolation("document.target_required", "name the target's id", "请指定关联对象")
    if target_type is DocumentTarget.household:
        household = await load_household(session, principal=principal, household_id=target_id)
        return Target(target_type, household.id, household.area_code, household.id)
    if target_type is DocumentTarget.member:
        member = await session.scalar(scoped(select(Member), principal, Member.area_code).where(Member.id == target_id))
        if member is None:
            raise not_found("member")
        household = await load_household(session, principal=principal, household_id=member.household_id)
        return Target(target_type, member.id, household.area_code, household.id)
    if target_type is DocumentTarget.visit:
        visit = await visit_service.get_visit(session, principal=principal, visit_id=target_id)
        return Target(target_type, visit.id, visit.area_code, visit.household_id, visit)
    if target_type is DocumentTarget.monitoring_step:
        row = (await session.execute(
            select(MonitoringStep.area_code, MonitoredHousehold.household_id)
            .join(MonitoredHousehold, MonitoredHousehold.id == MonitoringStep.monitored_household_id)
            .where(MonitoringStep.id == target_id, in_scope(principal, MonitoringStep.area_code))
        )).first()
        if row is None:
            raise not_found("monitoring_step")
        return Target(target_type, target_id, row.area_code, row.household_id)
    model: Any = ProjectTransition if target_type is DocumentTarget.project_step else ProjectNotice
    area = await session.scalar(scoped(select(model.area_code), principal, model.area_code).where(model.id == target_id))
    if area is None:
        raise not_found(target_type.value)
    return Target(target_type, target_id, area, None)


def _digest(source: BinaryIO, limit: int) -> tuple[str, int, bytes]:
    """(sha256, size, first bytes) in one pass; stops reading past the limit."""
    source.seek(0)
    digest, size, head = hashlib.sha256(), 0, b""
    while chunk := source.read(CHUNK):
        if not head:
            head = chunk[:HEAD]
        size += len(chunk)
        if size > limit:
            break
        digest.update(chunk)
    source.seek(0)
    return digest.hexdigest(), size, head


def check_type(head: bytes, declared: str | None) -> str:
    media_type = images.sniff(head)
    if media_type is None:
        raise UnsupportedType("document.unsupported_type",
                              "the content is not a JPEG, PNG or WebP image nor a PDF (checked from the bytes)",
                              "文件内容不是 JPEG、PNG、WebP 图片或 PDF(按内容检查)")
    if declared and declared in images.ALLOWED and declared != media_type:
        raise UnsupportedType("document.type_mismatch", f"declared {declared} but the content is {media_type}",
                              f"声明的类型 {declared} 与内容 {media_type} 不符",
                              extra={"declared": declared, "content": media_type})
    return media_type


async def upload(
    session: AsyncSession, *, principal: Principal, storage: Storage, limits: Limits, kind: rules.DocumentKind,
    target_type: DocumentTarget, target_id: uuid.UUID | None, source: BinaryIO, filename: str,
    declared_type: str | None,
) -> tuple[Document, bool]:
    """Check, store once and record a document; (document, created). See the module docstring."""
    target = await resolve_target(session, principal=principal, target_type=target_type, target_id=target_id)
    sha, size, head = await asyncio.to_thread(_digest, source, limits.max_bytes)
    if size == 0:
        raise RuleViolation("document.empty", "the file is empty", "文件为空")
    if size > limits.max_bytes:
        raise _too_large(limits.max_bytes)
    media_type = check_type(head, declared_type)
    existing = await _same_document(session, principal, target, sha, kind)
    if existing is not None:
        return existing, False
    facts = None
    if media_type in images.IMAGES:
        try:
            facts = await asyncio.to_thread(images.inspect, source, media_type, thumbnail_px=limits.thumbnail_px,
                                            tz=limits.tz)
        except images.CorruptImage as exc:
            raise RuleViolation("document.corrupt_image", "the image cannot be decoded", "图片无法解码",
                                extra={"reason": str(exc)[:200]}) from exc
    # Objects first: an object without a committed row is harmless (content-addressed, reused by the next
    # upload of the same bytes); a row without its object would not be.
    await storage.put(sha, source, content_type=media_type)
    thumb_sha = None
    if facts is not None:
        thumb_sha = hashlib.sha256(facts.thumbnail).hexdigest()
        await storage.put(thumb_sha, io.BytesIO(facts.thumbnail), content_type=images.JPEG)
    doc = Document(
        area_code=target.area_code, kind=kind.value, target_type=target.type.value, target_id=target.id,
        household_id=target.household_id, sha256=sha, size=size, media_type=media_type,
        filename=filename[:200], width=facts.width if facts else None, height=facts.height if facts else None,
        thumbnail_sha256=thumb_sha, taken_at=facts.taken_at if facts else None,
        latitude=facts.latitude if facts else None, longitude=facts.longitude if facts else None,
        flags=[], uploaded_by=principal.user_id,
    )
    if target.visit is not None:
        doc.flags = await visit_flags(session, doc, target.visit, limits)
    session.add(doc)
    await session.flush()
    await audit.record(session, principal, action="document.upload", entity="document", entity_id=doc.id,
                       area_code=doc.area_code,
                       after={"kind": doc.kind, "target_type": doc.target_type, "target_id": doc.target_id,
                              "sha256": sha, "size": size, "media_type": media_type, "flags": doc.flags})
    return doc, True


async def _same_document(
    session: AsyncSession, principal: Principal, target: Target, sha: str, kind: rules.DocumentKind
) -> Document | None:
    stmt = select(Document).where(Document.sha256 == sha, Document.kind == kind.value,
                                  Document.target_type == target.type.value)
    if target.id is None:
        stmt = stmt.where(Document.target_id.is_(None), Document.uploaded_by == principal.user_id)
    else:
        stmt = stmt.where(Document.target_id == target.id)
    return await session.scalar(stmt.limit(1))


async def visit_flags(session: AsyncSession, doc: Document, visit: Visit, limits: Limits) -> list[str]:
    village = (await session.execute(
        select(VillageLocation.latitude, VillageLocation.longitude).where(VillageLocation.area_code == visit.area_code)
    )).first()
    return rules.visit_photo_flags(
        visit_date=visit.visit_date, taken_at=doc.taken_at, latitude=doc.latitude, longitude=doc.longitude,
        village=(village.latitude, village.longitude) if village else None, max_km=limits.max_km, tz=limits.tz,
    )


async def link_to_visit(
    session: AsyncSession, *, principal: Principal, document_id: uuid.UUID, visit_id: uuid.UUID,
    client_id: uuid.UUID | None, limits: Limits,
) -> tuple[Document, bool]:
    """Attach a photo uploaded before its visit was synced (offline work) to the visit; (document, linked
    now). Linking again to the same visit is acknowledged; a document linked elsewhere is refused."""
    doc = await session.scalar(
        scoped(select(Document), principal, Document.area_code).where(Document.id == document_id).with_for_update()
    )
    if doc is None or (doc.target_id is None and doc.uploaded_by != principal.user_id):
        raise not_found("document")
    if doc.target_type == DocumentTarget.visit and doc.target_id == visit_id:
        return doc, False
    if doc.target_id is not None:
        raise RuleViolation("document.already_linked", "the document is linked to another object",
                            "该文件已关联到其他对象", status=409,
                            extra={"target_type": doc.target_type, "target_id": str(doc.target_id)})
    visit = await visit_service.get_visit(session, principal=principal, visit_id=visit_id)
    doc.target_type, doc.target_id = DocumentTarget.visit.value, visit.id
    doc.area_code, doc.household_id, doc.client_id = visit.area_code, visit.household_id, client_id
    doc.flags = await visit_flags(session, doc, visit, limits)
    await session.flush()
    await audit.record(session, principal, action="document.link", entity="document", entity_id=doc.id,
                       area_code=doc.area_code, after={"visit_id": visit.id, "flags": doc.flags})
    return doc, True


def _documents(principal: Principal) -> Any:
    return scoped(select(Document), principal, Document.area_code)


async def get_document(session: AsyncSession, *, principal: Principal, document_id: uuid.UUID) -> Document:
    doc = await session.scalar(_documents(principal).where(Document.id == document_id))
    if doc is None or (doc.household_id is not None and not await _household_visible(session, principal, doc)):
        raise not_found("document")
    return doc


async def _household_visible(session: AsyncSession, principal: Principal, doc: Document) -> bool:
    """A cadre sees only their own households' documents (and their own unattached uploads)."""
    if not is_cadre(principal) or doc.household_id is None:
        return True
    mine = own_households(principal).where(Pairing.household_id == doc.household_id).limit(1)
    return await session.scalar(mine) is not None


async def list_documents(
    session: AsyncSession, *, principal: Principal, target_type: DocumentTarget | None, target_id: uuid.UUID | None,
    household_id: uuid.UUID | None, limit: int, after: uuid.UUID | None,
) -> list[Document]:
    stmt = _documents(principal).order_by(Document.id)
    if is_cadre(principal):
        stmt = stmt.where(household_filter(principal, Document.household_id)
                          | ((Document.household_id.is_(None)) & (Document.uploaded_by == principal.user_id)))
    if target_type is not None:
        stmt = stmt.where(Document.target_type == target_type.value)
    if target_id is not None:
        stmt = stmt.where(Document.target_id == target_id)
    if household_id is not None:
        stmt = stmt.where(Document.household_id == household_id)
    if after is not None:
        stmt = stmt.where(Document.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())


@dataclass(frozen=True)
class Download:
    media_type: str
    chunks: AsyncIterator[bytes]
    filename: str
    location_removed: bool


async def download(
    session: AsyncSession, *, principal: Principal, storage: Storage, document_id: uuid.UUID, thumbnail: bool,
) -> Download:
    """The bytes of a document for the caller: refused for ID-bearing papers to roles that do not see ID
    numbers (403), EXIF location removed for everyone but auditors, and one audit row per download."""
    doc = await get_document(session, principal=principal, document_id=document_id)
    if not rules.may_read_kind(principal.role, doc.kind):
        raise Forbidden("document.id_restricted",
                        "this document shows ID numbers; your role may not download it",
                        "该材料含身份证号码,您的角色无权下载")
    if thumbnail and doc.thumbnail_sha256 is None:
        raise not_found("thumbnail")
    strip = not thumbnail and doc.latitude is not None and not rules.sees_location(principal.role)
    await audit.record(session, principal, action="document.download", entity="document", entity_id=doc.id,
                       area_code=doc.area_code, after={"thumbnail": thumbnail, "location_removed": strip})
    if thumbnail:
        return Download(images.JPEG, storage.read(doc.thumbnail_sha256 or ""), doc.filename, False)
    chunks = storage.read(doc.sha256)
    if strip:
        chunks = _without_location(chunks, doc.media_type)
    return Download(doc.media_type, chunks, doc.filename, strip)


async def _without_location(chunks: AsyncIterator[bytes], media_type: str) -> AsyncIterator[bytes]:
    """Stream a photo with its EXIF location removed: a JPEG's EXIF segment rewritten in place (the image
    data passes through untouched); other images re-encoded without metadata (rare: phones write JPEG)."""
    if media_type != images.JPEG:
        data = b"".join([c async for c in chunks])
        yield await asyncio.to_thread(images.reencoded_without_metadata, data, media_type)
        return
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= 2 * HEAD:
            break
    rewritten = images.jpeg_head_without_gps(head)
    if rewritten is None:
        yield head
    else:
        new_head, replaced = rewritten
        yield new_head + head[replaced:]
    async for chunk in chunks:
        yield chunk
