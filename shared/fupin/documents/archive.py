"""Completeness of the household archive (一户一档; the seed names 「村户档案缺页漏项」 as what the system
must catch): per household, which of the county's required documents are missing; per village, the
share of complete archives. Also the county's required list and the village locations visit photos are
checked against, and the township's list of flagged visit photos.

Archived households are those ever registered and not removed (registered, returned to poverty, exited):
an exited household keeps its archive. A household's documents are those linked to it, to one of its
members, visits or monitoring steps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import String, delete, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import paging
from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.scope import in_scope, visible, within
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.documents.models import ArchiveRequirement, Document, VillageLocation
from fupin.documents.rules import DocumentKind
from fupin.errors import RuleViolation, not_found
from fupin.households.models import Household
from fupin.pairing.access import directory_visible, load_household
from fupin.pairing.models import Visit

ARCHIVED = ("registered", "returned_to_poverty", "exited")
# Until a county sets its own list: the papers 000 L19 names (户口本、粮补卡、医疗服务证).
DEFAULT_REQUIRED = (DocumentKind.hukou, DocumentKind.grain_card, DocumentKind.medical_card)
SHARE = Decimal("0.0001")


async def required_kinds(session: AsyncSession, *, county: str) -> list[str]:
    kinds = (await session.scalars(
        select(ArchiveRequirement.kind).where(ArchiveRequirement.area_code == county).order_by(ArchiveRequirement.kind)
    )).all()
    return list(kinds) if kinds else [k.value for k in DEFAULT_REQUIRED]


async def get_required_kinds(session: AsyncSession, *, principal: Principal, county: str) -> list[str]:
    """The list as a county directory: read inside the county (and above it), 404 elsewhere."""
    if level_of(county) is not Level.county or not directory_visible(principal, county):
        raise not_found("area")
    return await required_kinds(session, county=county)


async def set_required_kinds(
    session: AsyncSession, *, principal: Principal, county: str, kinds: list[DocumentKind]
) -> list[str]:
    """Replace the county's list (an empty list falls back to the regulation's default)."""
    if level_of(county) is not Level.county:
        raise RuleViolation("archive.not_a_county", "the required list is set per county", "档案必备清单按县设置")
    if not visible(principal, county):
        raise not_found("area")
    before = await required_kinds(session, county=county)
    await session.execute(delete(ArchiveRequirement).where(ArchiveRequirement.area_code == county))
    if kinds:
        await session.execute(insert(ArchiveRequirement), [{"area_code": county, "kind": k.value} for k in set(kinds)])
    after = await required_kinds(session, county=county)
    await audit.record(session, principal, action="archive.requirements", entity="area", entity_id=county,
                       area_code=county, before={"kinds": before}, after={"kinds": after})
    return after


async def set_village_location(
    session: AsyncSession, *, principal: Principal, village: str, latitude: Decimal, longitude: Decimal
) -> None:
    if level_of(village) is not Level.village:
        raise RuleViolation("archive.not_a_village", "a location is set per village", "位置按村设置")
    if not visible(principal, village):
        raise not_found("area")
    stmt = insert(VillageLocation).values(area_code=village, latitude=latitude, longitude=longitude)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["area_code"],
        set_={"latitude": stmt.excluded.latitude, "longitude": stmt.excluded.longitude, "updated_at": func.now()}))
    await audit.record(session, principal, action="archive.village_location", entity="area", entity_id=village,
                       area_code=village, after={"latitude": latitude, "longitude": longitude})


@dataclass(frozen=True)
class HouseholdArchive:
    household_id: uuid.UUID
    required: list[str]
    present: dict[str, int]  # kind → documents held
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


async def household_archive(session: AsyncSession, *, principal: Principal, household_id: uuid.UUID) -> HouseholdArchive:
    household = await load_household(session, principal=principal, household_id=household_id)
    required = await required_kinds(session, county=county_of(household.area_code))
    present = {k: int(n) for k, n in (await session.execute(
        select(Document.kind, func.count()).where(Document.household_id == household.id).group_by(Document.kind)
    )).all()}
    return HouseholdArchive(household.id, required, present, [k for k in required if k not in present])


@dataclass(frozen=True)
class VillageShare:
    village: str
    households: int
    complete: int
    share: Decimal | None


@dataclass(frozen=True)
class IncompleteHousehold:
    household_id: uuid.UUID
    village: str
    household_no: str
    head_name: str
    missing: list[str]


async def area_archive_report(
    session: AsyncSession, *, principal: Principal, area: str, limit: int
) -> tuple[list[str], list[VillageShare], list[IncompleteHousehold]]:
    """Per village of `area`: archived households, complete archives and their share (4 decimals, half
    up); and up to `limit` incomplete households with what they lack. One statement per part, set-based."""
    if not (visible(principal, area) or directory_visible(principal, area)):
        raise not_found("area")
    required = await required_kinds(session, county=county_of(area))
    have = (
        select(Document.household_id, func.array_agg(func.distinct(Document.kind)).label("kinds"))
        .where(Document.kind.in_(required), Document.household_id.is_not(None), in_scope(principal, Document.area_code),
               within(Document.area_code, area))
        .group_by(Document.household_id).subquery("have")
    )
    households = (
        select(Household.id, Household.area_code, Household.household_no, Household.head_name,
               func.coalesce(func.cardinality(have.c.kinds), 0).label("held"), have.c.kinds)
        .outerjoin(have, have.c.household_id == Household.id)
        .where(Household.status.in_(ARCHIVED), in_scope(principal, Household.area_code), within(Household.area_code, area))
        .subquery("h")
    )
    n_required = len(required)
    rows = (await session.execute(
        select(households.c.area_code, func.count(), func.count().filter(households.c.held >= n_required))
        .group_by(households.c.area_code).order_by(households.c.area_code)
    )).all()
    villages = [VillageShare(v, int(n), int(c), (Decimal(c) / Decimal(n)).quantize(SHARE, ROUND_HALF_UP) if n else None)
                for v, n, c in rows]
    missing_rows = (await session.execute(
        select(households.c.id, households.c.area_code, households.c.household_no, households.c.head_name,
               households.c.kinds)
        .where(households.c.held < n_required).order_by(households.c.area_code, households.c.household_no).limit(limit)
    )).all()
    incomplete = [IncompleteHousehold(r.id, r.area_code, r.household_no, r.head_name,
                                      [k for k in required if k not in (r.kinds or ())]) for r in missing_rows]
    return required, villages, incomplete


@dataclass(frozen=True)
class FlaggedPhoto:
    document_id: uuid.UUID
    visit_id: uuid.UUID
    household_id: uuid.UUID | None
    village: str
    visit_date: date
    taken_at: Any
    flags: list[str]


async def flagged_visit_photos(
    session: AsyncSession, *, principal: Principal, area: str, date_from: date | None, date_to: date | None,
    limit: int, cursor: str | None = None,
) -> tuple[list[FlaggedPhoto], str | None]:
    """Visit photos taken on another day or far from the village, for the township to look at."""
    if not visible(principal, area):
        raise not_found("area")
    stmt = (
        select(Document.id, Visit.id.label("visit_id"), Document.household_id, Document.area_code, Visit.visit_date,
               Document.taken_at, Document.flags)
        .join(Visit, Visit.id == Document.target_id)
        .where(Document.target_type == "visit", Document.flags != literal([], type_=ARRAY(String())),
               in_scope(principal, Document.area_code), within(Document.area_code, area))
    )
    stmt = paging.after(stmt, [Visit.visit_date.desc(), Document.id], cursor, limit)
    if date_from:
        stmt = stmt.where(Visit.visit_date >= date_from)
    if date_to:
        stmt = stmt.where(Visit.visit_date <= date_to)
    rows = [FlaggedPhoto(r.id, r.visit_id, r.household_id, r.area_code, r.visit_date, r.taken_at, list(r.flags))
            for r in (await session.execute(stmt)).all()]
    return paging.page(rows, limit, lambda p: (p.visit_date, p.document_id))
