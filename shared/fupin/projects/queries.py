"""Heavy reads: the fund utilisation report (set-based) and a household's projects."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import Numeric, and_, case, func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.scope import scoped
from fupin.auth.principal import Principal
from fupin.errors import not_found
from fupin.households.models import Household
from fupin.projects.models import Project, ProjectBeneficiary, ProjectBudget, ProjectFund
from fupin.projects.schemas import Source

# Typed constants: an untyped literal would come back as 0 rather than 0.00 (and see performance rule 1).
ZERO = literal(0, Numeric(14, 2))


class GroupBy(StrEnum):
    project_source = "project_source"
    project = "project"
    source = "source"
    township = "township"
    year = "year"


async def fund_utilisation(
    session: AsyncSession,
    *,
    principal: Principal,
    year: int | None,
    township: str | None,
    source: Source | None,
    group_by: GroupBy,
) -> list[dict[str, Any]]:
    """Budget, allocated, disbursed and % used (disbursed ÷ budget × 100, half-up to 0.01) per project,
    source, township or year, in one statement. `township` is the owning township; county-owned
    projects report under no township (null)."""
    moved = (
        select(
            ProjectFund.project_id,
            ProjectFund.source,
            func.sum(case((ProjectFund.movement == "allocation", ProjectFund.amount), else_=ZERO)).label("allocated"),
            func.sum(case((ProjectFund.movement == "disbursement", ProjectFund.amount), else_=ZERO)).label("disbursed"),
        )
        .group_by(ProjectFund.project_id, ProjectFund.source)
        .subquery()
    )
    township_col = case(
        (func.substr(Project.area_code, 7, 3) != "000", Project.area_code), else_=null()
    ).label("township_code")
    base = (
        select(
            Project.id.label("project_id"),
            Project.name.label("project_name"),
            Project.year.label("year"),
            township_col,
            ProjectBudget.source.label("source"),
            ProjectBudget.amount.label("budget"),
            func.coalesce(moved.c.allocated, ZERO).label("allocated"),
            func.coalesce(moved.c.disbursed, ZERO).label("disbursed"),
        )
        .join(ProjectBudget, ProjectBudget.project_id == Project.id)
        .outerjoin(moved, and_(moved.c.project_id == Project.id, moved.c.source == ProjectBudget.source))
    )
    base = scoped(base, principal, Project.area_code)
    if year is not None:
        base = base.where(Project.year == year)
    if township is not None:
        base = base.where(Project.area_code == township)
    if source is not None:
        base = base.where(ProjectBudget.source == source.value)
    b = base.subquery()
    keys: dict[GroupBy, list[Any]] = {
        GroupBy.project_source: [b.c.project_id, b.c.project_name, b.c.year, b.c.township_code, b.c.source],
        GroupBy.project: [b.c.project_id, b.c.project_name, b.c.year, b.c.township_code],
        GroupBy.source: [b.c.source],
        GroupBy.township: [b.c.township_code],
        GroupBy.year: [b.c.year],
    }
    cols = keys[group_by]
    budget = func.sum(b.c.budget)
    disbursed = func.sum(b.c.disbursed)
    hundred = literal(100, Numeric(9, 6))
    used = func.round(disbursed * hundred / func.nullif(budget, ZERO), 2)
    all_cols = {
        "project_id": b.c.project_id, "project_name": b.c.project_name, "source": b.c.source,
        "township_code": b.c.township_code, "year": b.c.year,
    }
    selected = [c.label(name) if any(c is k for k in cols) else null().label(name) for name, c in all_cols.items()]
    stmt = (
        select(
            *selected,
            budget.label("budget"),
            func.sum(b.c.allocated).label("allocated"),
            disbursed.label("disbursed"),
            used.label("used_pct"),
        )
        .group_by(*cols)
        .order_by(*[c.asc().nulls_first() for c in cols])
    )
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def household_projects(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Projects benefiting a household (the household's view), within the caller's scope."""
    hh = await session.scalar(
        scoped(select(Household.id).where(Household.id == household_id), principal, Household.area_code)
    )
    if hh is None:
        raise not_found("household")
    rows = (
        select(
            Project.id.label("project_id"), Project.name, Project.kind, Project.year, Project.status,
            ProjectBeneficiary.benefit_kind, ProjectBeneficiary.amount,
        )
        .join(ProjectBeneficiary, ProjectBeneficiary.project_id == Project.id)
        .where(ProjectBeneficiary.household_id == household_id)
        .order_by(Project.year.desc(), Project.name, ProjectBeneficiary.benefit_kind)
    )
    stmt = scoped(rows, principal, Project.area_code)  # type: ignore[type-var]  # 7-column Select generic
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]
