"""Beneficiaries (带贫, 到村到户) and the per-county cap on a household's cumulative direct benefit from
industry projects (004 L179: 「对有劳动能力的人,引导贫困户发展产业,每户从中累计受益不超过三千元」;
a setting with effective dates, off by default)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, contains, level_of
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households.models import Household
from fupin.projects import rules
from fupin.projects.models import Project, ProjectArea, ProjectBeneficiary, ProjectSetting
from fupin.projects.schemas import BenefitKind, HouseholdBenefitIn, Kind, Status
from fupin.projects.service import ZERO, check_areas, get_project

# Benefits paid to the household itself; shared infrastructure is not a direct benefit.
DIRECT_BENEFITS = (BenefitKind.cash.value, BenefitKind.jobs.value, BenefitKind.dividends.value)


async def benefit_cap(session: AsyncSession, *, county_code: str, on: date) -> Decimal | None:
    """The per-household cap on direct industry benefit in force in a county on a day (None = off)."""
    return await session.scalar(
        select(ProjectSetting.household_benefit_cap)
        .where(
            ProjectSetting.area_code == county_code,
            ProjectSetting.effective_from <= on,
            (ProjectSetting.effective_to.is_(None)) | (ProjectSetting.effective_to > on),
        )
        .order_by(ProjectSetting.effective_from.desc())
        .limit(1)
    )


async def add_setting(
    session: AsyncSession, *, principal: Principal, county_code: str, cap: Decimal | None,
    effective_from: date, effective_to: date | None,
) -> ProjectSetting:
    """Switch the per-household industry benefit cap on (or off with no cap) from a date (004 L179)."""
    if level_of(county_code) is not Level.county or not visible(principal, county_code):
        raise not_found("area")
    if effective_to is not None and effective_to <= effective_from:
        raise RuleViolation("project.setting_period", "effective_to must follow effective_from", "生效期间不合法")
    row = ProjectSetting(id=uuid.uuid4(), area_code=county_code, household_benefit_cap=cap,
                         effective_from=effective_from, effective_to=effective_to)
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action="project.setting", entity="project_setting", entity_id=row.id,
        area_code=county_code, after={"cap": cap, "from": effective_from, "to": effective_to},
    )
    return row


async def add_beneficiaries(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, villages: list[str],
    households: list[HouseholdBenefitIn],
) -> Project:
    """Tie a project to villages and households (到村到户) with each household's benefit. With the
    county's cap on, one household's cumulative direct benefit from industry projects may not exceed
    it (004 L179: 「每户从中累计受益不超过三千元」)."""
    project = await get_project(session, principal=principal, project_id=project_id, lock=True)
    if Status(project.status) in rules.TERMINAL:
        raise Conflict("project.closed", "the project is closed or cancelled", "项目已结项或已取消")
    villages = sorted(set(villages))
    await check_areas(session, owner=project.area_code, codes=villages, level=Level.village)
    ids = [h.household_id for h in households]
    if len({(h.household_id, h.kind) for h in households}) != len(households):
        raise RuleViolation("project.duplicate_beneficiary", "a household and kind appear twice", "受益户重复")
    found = {
        h.id: h
        for h in (
            await session.scalars(scoped(select(Household).where(Household.id.in_(ids)), principal, Household.area_code))
        ).all()
    }
    for h in households:
        hh = found.get(h.household_id)
        if hh is None or not contains(project.area_code, hh.area_code):
            raise not_found("household")
    covered = set(
        (await session.scalars(select(ProjectArea.code).where(ProjectArea.project_id == project.id))).all()
    )
    new_villages = set(villages) | {found[h.household_id].area_code for h in households}
    for code in sorted(new_villages - covered):
        session.add(ProjectArea(project_id=project.id, code=code, level="village", area_code=project.area_code))
        township = code[:9] + "000"
        if township not in covered:
            covered.add(township)
            session.add(ProjectArea(project_id=project.id, code=township, level="township", area_code=project.area_code))
    if project.kind == Kind.industry.value and households:
        await _check_cap(session, project=project, households=households)
    session.add_all(
        ProjectBeneficiary(
            id=uuid.uuid4(), project_id=project.id, area_code=found[h.household_id].area_code,
            project_kind=project.kind, household_id=h.household_id, benefit_kind=h.kind.value, amount=h.amount,
        )
        for h in households
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # the unique (project, household, kind) constraint
        raise Conflict("project.beneficiary_exists", "that household already has that benefit", "该户已登记此受益") from exc
    await audit.record(
        session, principal, action="project.beneficiaries", entity="project", entity_id=project.id,
        area_code=project.area_code,
        after={"villages": villages, "households": [h.model_dump(mode="json") for h in households]},
    )
    return project


async def _check_cap(session: AsyncSession, *, project: Project, households: list[HouseholdBenefitIn]) -> None:
    county = project.area_code[:6] + "000000"
    cap = await benefit_cap(session, county_code=county, on=business_date())
    if cap is None:
        return
    adding: dict[uuid.UUID, Decimal] = {}
    for h in households:
        if h.kind.value in DIRECT_BENEFITS:
            adding[h.household_id] = adding.get(h.household_id, ZERO) + h.amount
    if not adding:
        return
    # Two projects adding benefit to one household at once must not both pass: serialise per household.
    for hid in sorted(adding, key=str):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"project.benefit:{hid}"}
        )
    rows = await session.execute(
        select(ProjectBeneficiary.household_id, func.sum(ProjectBeneficiary.amount))
        .where(
            ProjectBeneficiary.household_id.in_(list(adding)),
            ProjectBeneficiary.project_kind == Kind.industry.value,
            ProjectBeneficiary.benefit_kind.in_(DIRECT_BENEFITS),
        )
        .group_by(ProjectBeneficiary.household_id)
    )
    so_far = {hid: Decimal(total) for hid, total in rows.all()}
    for hid, amount in adding.items():
        total = so_far.get(hid, ZERO) + amount
        if total > cap:
            raise RuleViolation(
                "project.household_benefit_cap",
                f"household {hid} would receive {total} from industry projects, above the cap {cap}",
                f"该户产业项目累计受益 {total} 元,超过上限 {cap} 元",
                extra={"household_id": str(hid), "total": str(total), "cap": str(cap)},
            )


async def list_beneficiaries(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID
) -> tuple[list[str], list[ProjectBeneficiary]]:
    project = await get_project(session, principal=principal, project_id=project_id)
    villages = (
        await session.scalars(
            select(ProjectArea.code)
            .where(ProjectArea.project_id == project.id, ProjectArea.level == "village")
            .order_by(ProjectArea.code)
        )
    ).all()
    rows = (
        await session.scalars(
            select(ProjectBeneficiary)
            .where(ProjectBeneficiary.project_id == project.id)
            .order_by(ProjectBeneficiary.area_code, ProjectBeneficiary.household_id, ProjectBeneficiary.benefit_kind)
        )
    ).all()
    return list(villages), list(rows)
