"""一户一档: documents and photos (upload, download), the archive's completeness, visit photo flags."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.documents import archive, rules
from fupin.documents import service as documents
from fupin.documents.models import Document
from fupin.documents.rules import DocumentKind, DocumentTarget
from fupin.documents.schemas import (
    ArchiveReport,
    ArchiveRequirementsRead,
    ArchiveRequirementsWrite,
    DocumentRead,
    FlaggedPhotoRead,
    HouseholdArchiveRead,
    IncompleteArchive,
    VillageArchiveShare,
    VillageLocationWrite,
)
from fupin.money import Day
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep, SettingsDep, StorageDep
from fupin_api.idempotency import WriteRoute
from fupin_api.params import CursorQ, LimitQ
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["documents"])
Limit = Annotated[int, Query(ge=1, le=500)]
AreaParam = Annotated[str, Query(pattern=r"^\d{12}$", description="12-digit area code")]
AreaCode = Annotated[str, Path(pattern=r"^\d{12}$")]
BINARY = {"description": "The file's bytes", "content": {"application/octet-stream": {"schema": {
    "type": "string", "format": "binary"}}}}


def _read(doc: Document, principal: Principal) -> DocumentRead:
    shows_location = rules.sees_location(principal.role)
    return DocumentRead(
        id=doc.id, area_code=doc.area_code, kind=doc.kind, target_type=doc.target_type, target_id=doc.target_id,
        household_id=doc.household_id, sha256=doc.sha256, size=doc.size, media_type=doc.media_type,
        filename=doc.filename, width=doc.width, height=doc.height, has_thumbnail=doc.thumbnail_sha256 is not None,
        taken_at=doc.taken_at, has_location=doc.latitude is not None,
        latitude=doc.latitude if shows_location else None, longitude=doc.longitude if shows_location else None,
        flags=list(doc.flags), uploaded_by=doc.uploaded_by, created_at=doc.created_at,
    )


@router.post(
    "/documents", status_code=201, response_model=DocumentRead,
    summary="Upload a document or photo (multipart) for a household, member, visit, project step, notice or "
            "monitoring step",
    responses={**problem_responses(403, 404, 413, 415), 200: {"description": "The same file was already there "
                                                                             "for this target and kind"}},
)
async def upload_document(
    response: Response, session: SessionDep, settings: SettingsDep, storage: StorageDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF; the type is read from the bytes")],
    kind: Annotated[DocumentKind, Form()],
    target_type: Annotated[DocumentTarget, Form(description="`unattached`: a photo taken offline, linked to its "
                                                            "visit later by POST /field/sync")],
    target_id: Annotated[uuid.UUID | None, Form()] = None,
    principal: Principal = Authorized(Perm.document_upload),
) -> DocumentRead:
    """Refused: an empty file (422 `document.empty`), one past `document_max_bytes` (413 `document.too_large`),
    content that is not an accepted type whatever its name says (415 `document.unsupported_type`,
    `document.type_mismatch`), an image that does not decode (422 `document.corrupt_image`). The bytes are
    stored once per content; the same file for the same target and kind answers 200 with the existing one."""
    doc, created = await documents.upload(
        session, principal=principal, storage=storage, limits=documents.Limits.of(settings), kind=kind,
        target_type=target_type, target_id=target_id, source=file.file, filename=file.filename or "",
        declared_type=file.content_type)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/documents/{doc.id}"
    return _read(doc, principal)


@router.get("/documents", summary="List documents in your area (a cadre: their own households')",
            response_model=Page[DocumentRead], responses=problem_responses(403))
async def list_documents(
    session: SessionDep, principal: Principal = Authorized(Perm.document_read),
    target_type: DocumentTarget | None = None, target_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None, limit: Limit = 100, cursor: uuid.UUID | None = None,
) -> Page[DocumentRead]:
    rows = await documents.list_documents(session, principal=principal, target_type=target_type, target_id=target_id,
                                          household_id=household_id, limit=limit, after=cursor)
    return Page[DocumentRead](items=[_read(d, principal) for d in rows],
                              next_cursor=str(rows[-1].id) if len(rows) == limit else None)


@router.get("/documents/{document_id}", summary="A document's description", response_model=DocumentRead,
            responses=problem_responses(403, 404))
async def get_document(document_id: uuid.UUID, session: SessionDep,
                       principal: Principal = Authorized(Perm.document_read)) -> DocumentRead:
    return _read(await documents.get_document(session, principal=principal, document_id=document_id), principal)


async def _stream(session: SessionDep, storage: StorageDep, principal: Principal, document_id: uuid.UUID,
                  thumbnail: bool) -> StreamingResponse:
    dl = await documents.download(session, principal=principal, storage=storage, document_id=document_id,
                                  thumbnail=thumbnail)
    name = quote(dl.filename or str(document_id))
    return StreamingResponse(dl.chunks, media_type=dl.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
        "X-Location-Removed": "true" if dl.location_removed else "false",
        "Cache-Control": "private, no-store",
    })


@router.get("/documents/{document_id}/content", summary="Download a document (audited)",
            response_class=StreamingResponse, responses={**problem_responses(403, 404), 200: BINARY})
async def download_document(document_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                            principal: Principal = Authorized(Perm.document_read)) -> StreamingResponse:
    """ID-bearing papers (户口本, 粮补卡, 医疗服务证) only for the roles that see ID numbers (403
    `document.id_restricted`); a photo's EXIF location is removed for everyone but auditors
    (`X-Location-Removed: true`). Every download writes an audit row."""
    return await _stream(session, storage, principal, document_id, False)


@router.get("/documents/{document_id}/thumbnail", summary="An image's thumbnail (JPEG, no metadata; audited)",
            response_class=StreamingResponse, responses={**problem_responses(403, 404), 200: BINARY})
async def download_thumbnail(document_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                             principal: Principal = Authorized(Perm.document_read)) -> StreamingResponse:
    return await _stream(session, storage, principal, document_id, True)


@router.get("/households/{household_id}/archive", summary="A household's archive: required documents held and missing",
            response_model=HouseholdArchiveRead, responses=problem_responses(403, 404))
async def household_archive(household_id: uuid.UUID, session: SessionDep,
                            principal: Principal = Authorized(Perm.document_read)) -> HouseholdArchiveRead:
    a = await archive.household_archive(session, principal=principal, household_id=household_id)
    return HouseholdArchiveRead(household_id=a.household_id, required=a.required, present=a.present,
                                missing=a.missing, complete=a.complete)


@router.get("/reports/archive-completeness",
            summary="Per village: archived households, complete archives and their share; incomplete households",
            response_model=ArchiveReport, responses=problem_responses(403, 404))
async def archive_completeness(session: SessionDep, area: AreaParam, limit: Limit = 100,
                               principal: Principal = Authorized(Perm.archive_report)) -> ArchiveReport:
    required, villages, incomplete = await archive.area_archive_report(session, principal=principal, area=area,
                                                                       limit=limit)
    return ArchiveReport(area_code=area, required=required,
                         villages=[VillageArchiveShare.model_validate(v) for v in villages],
                         incomplete=[IncompleteArchive.model_validate(h) for h in incomplete])


@router.get("/reports/visit-evidence-flags",
            summary="Visit photos taken on another day or far from the village, for the township to check",
            response_model=Page[FlaggedPhotoRead], responses=problem_responses(403, 404))
async def visit_evidence_flags(session: SessionDep, area: AreaParam, date_from: Day | None = None,
                               date_to: Day | None = None, limit: LimitQ = 100, cursor: CursorQ = None,
                               principal: Principal = Authorized(Perm.pairing_report)) -> Page[FlaggedPhotoRead]:
    """Newest visit first."""
    rows, next_cursor = await archive.flagged_visit_photos(session, principal=principal, area=area,
                                                           date_from=date_from, date_to=date_to, limit=limit,
                                                           cursor=cursor)
    return Page[FlaggedPhotoRead](items=[FlaggedPhotoRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/archive/requirements/{county}", summary="The county's required documents per household",
            response_model=ArchiveRequirementsRead, responses=problem_responses(403, 404))
async def get_requirements(county: AreaCode, session: SessionDep,
                           principal: Principal = Authorized(Perm.document_read)) -> ArchiveRequirementsRead:
    kinds = await archive.get_required_kinds(session, principal=principal, county=county)
    return ArchiveRequirementsRead(county=county, kinds=kinds)


@router.put("/archive/requirements/{county}", summary="Set the county's required documents (empty: the default)",
            response_model=ArchiveRequirementsRead, responses=problem_responses(403, 404))
async def set_requirements(county: AreaCode, body: ArchiveRequirementsWrite, session: SessionDep,
                           principal: Principal = Authorized(Perm.archive_setting)) -> ArchiveRequirementsRead:
    """Without a list of its own a county requires the papers 000 L19 names: 户口本, 粮补卡, 医疗服务证."""
    kinds = await archive.set_required_kinds(session, principal=principal, county=county, kinds=body.kinds)
    return ArchiveRequirementsRead(county=county, kinds=kinds)


@router.put("/archive/village-locations/{village}", summary="Set where a village is (visit photo checks)",
            status_code=204, responses=problem_responses(403, 404))
async def set_village_location(village: AreaCode, body: VillageLocationWrite, session: SessionDep,
                               principal: Principal = Authorized(Perm.archive_setting)) -> Response:
    await archive.set_village_location(session, principal=principal, village=village, latitude=body.latitude,
                                       longitude=body.longitude)
    return Response(status_code=204)
