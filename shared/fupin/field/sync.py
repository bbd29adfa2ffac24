"""Offline batch sync: a cadre records visits, measures and visit photos without a network for a day and
sends them in the evening in one request.

- Each item carries the phone's id (`client_id`) and clock (`recorded_at`); the id becomes the visit's or
  measure's own id, so an item sent again is recognised by its id alone — acknowledged (`already_synced`,
  the same id), never recorded twice — whether the earlier batch's answer was lost or not.
- Each item is answered on its own: one savepoint per item, so a refused item (its rule's code) leaves
  the others in. The rules are those of the one-by-one routes (`visits.record_visit`, `visits.add_measure`,
  `documents.link_to_visit`), plus two refusals the app shows as such: the household was transferred to
  another cadre meanwhile (`sync.household_transferred`) and the cadre's pairing ended
  (`sync.pairing_ended`); the township can then record the visit on the cadre's behalf.
- Visits are applied first, then measures, then evidence, so a photo may name a visit of the same batch.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import in_scope
from fupin.auth.permissions import Perm, require
from fupin.auth.principal import Principal
from fupin.documents import service as documents
from fupin.documents.models import Document
from fupin.errors import DomainError, RuleViolation
from fupin.field.schemas import (
    SyncEvidence,
    SyncItem,
    SyncItemResult,
    SyncMeasure,
    SyncResults,
    SyncVisit,
)
from fupin.pairing import visits
from fupin.pairing.access import caller_cadre, is_cadre
from fupin.pairing.models import HelpMeasure, HelpPlan, Pairing, Visit

_ORDER = {"visit": 0, "measure": 1, "evidence": 2}


def _id_taken() -> RuleViolation:
    return RuleViolation("sync.id_taken", "this client_id belongs to another record; make a new one",
                         "该客户端编号已被其他记录占用,请重新生成", status=409)


class _Batch:
    """The state one batch shares between its items: who calls, and which ids already exist."""

    def __init__(self, session: AsyncSession, principal: Principal, limits: documents.Limits) -> None:
        self.session, self.principal, self.limits = session, principal, limits
        self.cadre_id: uuid.UUID | None = None
        self.existing: dict[uuid.UUID, Any] = {}

    async def load(self, items: list[SyncItem]) -> None:
        """The ids of the batch already recorded, in one query per kind (a re-sent batch is mostly these)."""
        s, p = self.session, self.principal
        if is_cadre(p):
            cadre = await caller_cadre(s, p)
            self.cadre_id = cadre.id if cadre else None
        ids = {t: [i.client_id for i in items if i.type == t] for t in _ORDER}
        if ids["visit"]:
            for r in (await s.execute(select(Visit.id, Visit.recorded_by).where(Visit.id.in_(ids["visit"])))).all():
                self.existing[r.id] = ("visit", r.recorded_by)
        if ids["measure"]:
            for m in (await s.execute(
                select(HelpMeasure.id, HelpMeasure.plan_id).where(HelpMeasure.id.in_(ids["measure"]))
            )).all():
                self.existing[m.id] = ("measure", m.plan_id)
        if ids["evidence"]:
            for d in (await s.execute(
                select(Document.client_id, Document.id, Document.target_id, Document.flags)
                .where(Document.client_id.in_(ids["evidence"]), in_scope(p, Document.area_code))
            )).all():
                self.existing[d.client_id] = ("evidence", (d.id, d.target_id, list(d.flags)))

    def known(self, item: SyncItem) -> SyncItemResult | None:
        """The answer for an item already recorded by an earlier batch (or earlier in this one)."""
        found = self.existing.get(item.client_id)
        if found is None:
            return None
        kind, detail = found
        same = kind == item.type and (
            (isinstance(item, SyncVisit) and detail == self.principal.user_id)
            or (isinstance(item, SyncMeasure) and detail == item.plan_id)
            or (isinstance(item, SyncEvidence) and detail[1] == item.visit_id)
        )
        if not same:
            return _refused(item, _id_taken())
        if isinstance(item, SyncEvidence):
            return SyncItemResult(client_id=item.client_id, type=item.type, status="already_synced", id=detail[0],
                                  flags=detail[2])
        return SyncItemResult(client_id=item.client_id, type=item.type, status="already_synced", id=item.client_id)

    async def pairing_conflict(self, household_id: uuid.UUID) -> DomainError | None:
        """For a cadre whose pairing with the household ended: transferred to another cadre, or just ended."""
        if self.cadre_id is None:
            return None
        rows = (await self.session.execute(
            select(Pairing.cadre_id, Pairing.end_date).where(Pairing.household_id == household_id)
        )).all()
        mine = [r for r in rows if r.cadre_id == self.cadre_id]
        if not mine or any(r.end_date is None for r in mine):
            return None  # paired now, or never (the rule's own answer follows)
        if any(r.end_date is None for r in rows):
            return RuleViolation("sync.household_transferred",
                                 "the household was transferred to another cadre; the township may record it for you",
                                 "该户已移交其他帮扶干部,可由乡镇代为录入", status=409)
        return RuleViolation("sync.pairing_ended", "your pairing with this household has ended",
                             "您与该户的结对帮扶关系已结束", status=409)


def _refused(item: SyncItem, exc: DomainError) -> SyncItemResult:
    return SyncItemResult(client_id=item.client_id, type=item.type, status="refused", code=exc.code,
                          detail=exc.message_en, detail_zh=exc.message_zh)


async def sync_batch(
    session: AsyncSession, *, principal: Principal, items: list[SyncItem], limits: documents.Limits
) -> SyncResults:
    """Apply a batch of offline work item by item (see the module docstring); results in the batch's order."""
    batch = _Batch(session, principal, limits)
    await batch.load(items)
    results: dict[int, SyncItemResult] = {}
    for index in sorted(range(len(items)), key=lambda k: _ORDER[items[k].type]):
        item = items[index]
        known = batch.known(item)
        if known is not None:
            results[index] = known
            continue
        try:
            async with session.begin_nested():
                results[index] = await _apply(batch, item)
        except DomainError as exc:
            results[index] = _refused(item, exc)
        except IntegrityError:  # the id exists where this caller cannot see it
            results[index] = _refused(item, _id_taken())
        if results[index].status == "created":
            batch.existing[item.client_id] = _remembered(item, results[index], principal)
    ordered = [results[k] for k in range(len(items))]
    return SyncResults(results=ordered, created=sum(r.status == "created" for r in ordered),
                       already_synced=sum(r.status == "already_synced" for r in ordered),
                       refused=sum(r.status == "refused" for r in ordered))


def _remembered(item: SyncItem, result: SyncItemResult, principal: Principal) -> Any:
    if isinstance(item, SyncVisit):
        return ("visit", principal.user_id)
    if isinstance(item, SyncMeasure):
        return ("measure", item.plan_id)
    return ("evidence", (result.id, item.visit_id, result.flags))


async def _apply(batch: _Batch, item: SyncItem) -> SyncItemResult:
    s, p = batch.session, batch.principal
    if isinstance(item, SyncVisit):
        if conflict := await batch.pairing_conflict(item.household_id):
            raise conflict
        visit = await visits.record_visit(
            s, principal=p, household_id=item.household_id, cadre_id=item.cadre_id, visit_date=item.visit_date,
            kind=item.kind, findings=item.findings, measures=item.measures, photo_refs=[], visit_id=item.client_id,
            client_recorded_at=item.recorded_at)
        return SyncItemResult(client_id=item.client_id, type="visit", status="created", id=visit.id)
    if isinstance(item, SyncMeasure):
        require(p.role, Perm.pairing_plan_write)
        household = await s.scalar(select(HelpPlan.household_id).where(HelpPlan.id == item.plan_id,
                                                                       in_scope(p, HelpPlan.area_code)))
        if household is not None and (conflict := await batch.pairing_conflict(household)):
            raise conflict
        await visits.add_measure(s, principal=p, plan_id=item.plan_id, measure={
            "id": item.client_id, "client_recorded_at": item.recorded_at, "kind": item.kind,
            "description": item.description, "funds": item.funds, "target_date": item.target_date,
            "status": item.status})
        return SyncItemResult(client_id=item.client_id, type="measure", status="created", id=item.client_id)
    require(p.role, Perm.document_upload)
    doc, linked = await documents.link_to_visit(s, principal=p, document_id=item.document_id, visit_id=item.visit_id,
                                                client_id=item.client_id, limits=batch.limits)
    return SyncItemResult(client_id=item.client_id, type="evidence", status="created" if linked else "already_synced",
                          id=doc.id, flags=list(doc.flags))
