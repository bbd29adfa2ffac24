"""Project library and lifecycle (扶贫项目): create, list, transitions, notices, bids, progress, beneficiaries.

Rule F-1 (003 L117): 「凡是没有落实到村到户的扶贫项目,县里一律不予验收、不予拨款」 — a project must name
at least one village and one beneficiary household before it is accepted or receives funds.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, contains, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible, within
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.calendar import business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.projects import rules
from fupin.projects.models import (
    Project,
    ProjectArea,
    ProjectBeneficiary,
    ProjectBid,
    ProjectBudget,
    ProjectNotice,
    ProjectProgress,
    ProjectTransition,
)
from fupin.projects.schemas import (
    Kind,
    NoticeStage,
    ProjectCreate,
    Source,
    Status,
)

ZERO = Decimal("0.00")


def transition_not_allowed(current: str, to: str) -> Conflict:
    return Conflict(
        "project.transition_not_allowed",
        f"a project cannot move from {current} to {to}",
        f"项目不能从 {current} 变更为 {to}",
        extra={"from": current, "to": to},
    )


async def check_areas(session: AsyncSession, *, owner: str, codes: list[str], level: Level) -> None:
    for code in codes:
        if level_of(code) is not level or not contains(owner, code):
            raise RuleViolation(
                "project.area_outside_owner",
                f"{code} is not a {level.value} inside {owner}",
                f"{code} 不是 {owner} 辖区内的{'乡镇' if level is Level.township else '村'}",
            )
    if codes:
        found = await session.scalar(select(func.count()).select_from(Area).where(Area.code.in_(codes)))
        if found != len(set(codes)):
            raise RuleViolation("project.area_unknown", "an area code does not exist", "区划代码不存在")


async def create_project(session: AsyncSession, *, principal: Principal, body: ProjectCreate) -> Project:
    """Declare (申报) a project owned by a county or township inside the caller's area."""
    if level_of(body.area_code) not in (Level.county, Level.township):
        raise RuleViolation("project.owner_level", "a project is owned by a county or township", "项目须由县或乡镇申报")
    if not visible(principal, body.area_code) or await session.get(Area, body.area_code) is None:
        raise not_found("area")
    townships = sorted(set(body.townships) | {v[:9] + "000" for v in body.villages})
    if level_of(body.area_code) is Level.township:
        townships = sorted(set(townships) | {body.area_code})
    villages = sorted(set(body.villages))
    await check_areas(session, owner=body.area_code, codes=townships, level=Level.township)
    await check_areas(session, owner=body.area_code, codes=villages, level=Level.village)
    project = Project(
        id=uuid.uuid4(), area_code=body.area_code, name=body.name, kind=body.kind.value, year=body.year,
        department=body.department, implementing_unit=body.implementing_unit,
        quantities=[q.model_dump(mode="json") for q in body.quantities], status=Status.proposed.value,
        final_paid=False,
    )
    session.add(project)
    await session.flush()
    session.add_all(
        ProjectBudget(project_id=project.id, source=s.value, area_code=project.area_code, amount=body.budget.get(s, ZERO))
        for s in Source
    )
    session.add_all(ProjectArea(project_id=project.id, code=c, level="township", area_code=project.area_code) for c in townships)
    session.add_all(ProjectArea(project_id=project.id, code=c, level="village", area_code=project.area_code) for c in villages)
    await session.flush()
    await audit.record(
        session, principal, action="project.create", entity="project", entity_id=project.id,
        area_code=project.area_code, after=body.model_dump(mode="json"),
    )
    return project


async def get_project(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, lock: bool = False) -> Project:
    stmt = scoped(select(Project).where(Project.id == project_id), principal, Project.area_code)
    if lock:
        stmt = stmt.with_for_update()
    project = await session.scalar(stmt)
    if project is None:
        raise not_found("project")
    return project


async def list_projects(
    session: AsyncSession,
    *,
    principal: Principal,
    area_code: str | None,
    year: int | None,
    kind: Kind | None,
    status: Status | None,
    limit: int,
    after: uuid.UUID | None,
) -> list[Project]:
    """Project library (项目库) view: projects owned by an area (and the areas under it) in a year."""
    stmt = scoped(select(Project), principal, Project.area_code).order_by(Project.id).limit(limit)
    if area_code:
        # A township's library also shows county projects that cover it.
        covering = select(ProjectArea.project_id).where(within(ProjectArea.code, area_code))
        stmt = stmt.where(within(Project.area_code, area_code) | Project.id.in_(covering))
    if year is not None:
        stmt = stmt.where(Project.year == year)
    if kind is not None:
        stmt = stmt.where(Project.kind == kind.value)
    if status is not None:
        stmt = stmt.where(Project.status == status.value)
    if after is not None:
        stmt = stmt.where(Project.id > after)
    return list((await session.scalars(stmt)).all())


async def details(session: AsyncSession, projects: list[Project]) -> dict[uuid.UUID, dict[str, Any]]:
    """Budgets and covered areas for a page of projects, in two queries."""
    ids = [p.id for p in projects]
    out: dict[uuid.UUID, dict[str, Any]] = {
        i: {"budget": {s.value: ZERO for s in Source}, "townships": [], "villages": []} for i in ids
    }
    if not ids:
        return out
    for b in (await session.scalars(select(ProjectBudget).where(ProjectBudget.project_id.in_(ids)))).all():
        out[b.project_id]["budget"][b.source] = b.amount
    areas = await session.scalars(
        select(ProjectArea).where(ProjectArea.project_id.in_(ids)).order_by(ProjectArea.code)
    )
    for a in areas.all():
        out[a.project_id]["townships" if a.level == "township" else "villages"].append(a.code)
    return out


async def has_beneficiaries(session: AsyncSession, project: Project) -> bool:
    """F-1: at least one village and at least one beneficiary household (到村到户)."""
    village = await session.scalar(
        select(ProjectArea.code).where(ProjectArea.project_id == project.id, ProjectArea.level == "village").limit(1)
    )
    household = await session.scalar(
        select(ProjectBeneficiary.id).where(ProjectBeneficiary.project_id == project.id).limit(1)
    )
    return village is not None and household is not None


def no_beneficiaries(action_en: str, action_zh: str) -> RuleViolation:
    return RuleViolation(
        "project.no_beneficiaries",
        f"a project not tied to villages and households cannot {action_en} (003 L117)",
        f"没有落实到村到户的扶贫项目不予{action_zh}",
    )


async def _notice_done(session: AsyncSession, project: Project, stage: NoticeStage, on: date) -> bool:
    found = await session.scalar(
        select(ProjectNotice.id)
        .where(ProjectNotice.project_id == project.id, ProjectNotice.stage == stage.value, ProjectNotice.ends_on <= on)
        .limit(1)
    )
    return found is not None


async def transition(
    session: AsyncSession,
    *,
    principal: Principal,
    project_id: uuid.UUID,
    to: Status,
    on: date | None,
    reason: str | None,
    acceptance_team: str | None,
    acceptance_result: str | None,
) -> ProjectTransition:
    """Move a project one step along proposed → in_library → approved → tendering → in_progress →
    completed → accepted → closed, or suspend/cancel it with a reason. Approval needs a finished
    public notice (公告公示, 004 L335), so does closing after acceptance; acceptance needs villages and
    households (003 L117); tendering ends with a winning bid."""
    project = await get_project(session, principal=principal, project_id=project_id, lock=True)
    current = Status(project.status)
    day = on or business_date()
    suspended_from = Status(project.suspended_from) if project.suspended_from else None
    if not rules.may_move(current, to, suspended_from):
        raise transition_not_allowed(current.value, to.value)
    if to in (Status.suspended, Status.cancelled) and not (reason and reason.strip()):
        raise RuleViolation("project.reason_required", f"{to.value} needs a reason", "暂停或取消项目须说明原因")
    if to is Status.approved and not await _notice_done(session, project, NoticeStage.pre_approval, day):
        raise RuleViolation(
            "project.notice_required", "a public notice whose period has ended is required before approval",
            "立项前须完成公告公示", extra={"stage": NoticeStage.pre_approval.value},
        )
    if to is Status.in_progress and current is Status.tendering:
        winner = await session.scalar(
            select(ProjectBid.id).where(ProjectBid.project_id == project.id, ProjectBid.winner).limit(1)
        )
        if winner is None:
            raise RuleViolation("project.no_winning_bid", "record the winning bid first", "须先确定中标单位")
    if to is Status.accepted:
        if not await has_beneficiaries(session, project):
            raise no_beneficiaries("be accepted", "验收")
        if not (acceptance_team and acceptance_result):
            raise RuleViolation(
                "project.acceptance_details_required", "acceptance needs the team and the result", "验收须填写验收组和验收结论"
            )
        project.accepted_on = day
        project.acceptance_team = acceptance_team
        project.acceptance_result = acceptance_result
    if to is Status.closed and not await _notice_done(session, project, NoticeStage.post_acceptance, day):
        raise RuleViolation(
            "project.notice_required", "the post-acceptance public notice must have run its period before closing",
            "验收后须完成公告公示方可结项", extra={"stage": NoticeStage.post_acceptance.value},
        )
    before = {"status": project.status, "suspended_from": project.suspended_from}
    if to is Status.suspended:
        project.suspended_from = current.value
    elif current is Status.suspended:
        project.suspended_from = None
    project.status = to.value
    if to in (Status.suspended, Status.cancelled):
        project.status_reason = reason
    elif current is Status.suspended:
        project.status_reason = None
    row = ProjectTransition(
        id=uuid.uuid4(), project_id=project.id, area_code=project.area_code, from_status=current.value,
        to_status=to.value, on=day, reason=reason, actor=principal.username,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action="project.transition", entity="project", entity_id=project.id,
        area_code=project.area_code, before=before,
        after={"status": project.status, "on": day, "reason": reason},
    )
    return row


async def list_transitions(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID) -> list[ProjectTransition]:
    project = await get_project(session, principal=principal, project_id=project_id)
    stmt = select(ProjectTransition).where(ProjectTransition.project_id == project.id).order_by(ProjectTransition.at)
    return list((await session.scalars(stmt)).all())


async def add_notice(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, stage: NoticeStage,
    starts_on: date, ends_on: date, content: str,
) -> ProjectNotice:
    """Record a public notice (公告公示) and its period: before approval, or after acceptance."""
    project = await get_project(session, principal=principal, project_id=project_id, lock=True)
    allowed = (
        {Status.proposed, Status.in_library} if stage is NoticeStage.pre_approval else {Status.accepted}
    )
    if Status(project.status) not in allowed:
        raise Conflict(
            "project.notice_stage_mismatch", f"a {stage.value} notice does not fit a {project.status} project",
            "公示阶段与项目状态不符",
        )
    if ends_on < starts_on:
        raise RuleViolation("project.notice_period", "the notice period ends before it starts", "公示期结束早于开始")
    notice = ProjectNotice(
        id=uuid.uuid4(), project_id=project.id, area_code=project.area_code, stage=stage.value,
        starts_on=starts_on, ends_on=ends_on, content=content,
    )
    session.add(notice)
    await session.flush()
    await audit.record(
        session, principal, action="project.notice", entity="project", entity_id=project.id,
        area_code=project.area_code, after={"stage": stage.value, "starts_on": starts_on, "ends_on": ends_on},
    )
    return notice


async def list_notices(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID) -> list[ProjectNotice]:
    project = await get_project(session, principal=principal, project_id=project_id)
    stmt = select(ProjectNotice).where(ProjectNotice.project_id == project.id).order_by(ProjectNotice.starts_on)
    return list((await session.scalars(stmt)).all())


async def add_bid(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, bidder: str, amount: Decimal, winner: bool
) -> ProjectBid:
    """Record a bid (招投标) while tendering; one bid may be marked the winner (中标)."""
    project = await get_project(session, principal=principal, project_id=project_id, lock=True)
    if project.status != Status.tendering.value:
        raise Conflict("project.not_tendering", "bids are recorded while tendering", "仅在招投标阶段登记投标")
    if winner:
        exists = await session.scalar(
            select(ProjectBid.id).where(ProjectBid.project_id == project.id, ProjectBid.winner).limit(1)
        )
        if exists is not None:
            raise Conflict("project.winner_exists", "a winning bid is already recorded", "已确定中标单位")
    bid = ProjectBid(id=uuid.uuid4(), project_id=project.id, area_code=project.area_code, bidder=bidder,
                     amount=amount, winner=winner)
    session.add(bid)
    await session.flush()
    await audit.record(
        session, principal, action="project.bid", entity="project", entity_id=project.id,
        area_code=project.area_code, after={"bidder": bidder, "amount": amount, "winner": winner},
    )
    return bid


async def list_bids(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID) -> list[ProjectBid]:
    project = await get_project(session, principal=principal, project_id=project_id)
    stmt = select(ProjectBid).where(ProjectBid.project_id == project.id).order_by(ProjectBid.created_at)
    return list((await session.scalars(stmt)).all())


async def winning_bid(session: AsyncSession, project: Project) -> ProjectBid | None:
    return await session.scalar(select(ProjectBid).where(ProjectBid.project_id == project.id, ProjectBid.winner))


async def add_progress(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, percent: int, reported_on: date, note: str
) -> ProjectProgress:
    """Progress update (percent complete, date, note) while the project is being built."""
    project = await get_project(session, principal=principal, project_id=project_id, lock=True)
    if project.status != Status.in_progress.value:
        raise Conflict("project.not_in_progress", "progress is reported while in progress", "仅在实施阶段报告进度")
    last = await session.scalar(
        select(func.max(ProjectProgress.percent)).where(ProjectProgress.project_id == project.id)
    )
    if last is not None and percent < last:
        raise RuleViolation("project.progress_backwards", f"progress was already {last}%", f"进度已为 {last}%")
    row = ProjectProgress(id=uuid.uuid4(), project_id=project.id, area_code=project.area_code, percent=percent,
                          reported_on=reported_on, note=note)
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action="project.progress", entity="project", entity_id=project.id,
        area_code=project.area_code, after={"percent": percent, "reported_on": reported_on},
    )
    return row


async def list_progress(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID) -> list[ProjectProgress]:
    project = await get_project(session, principal=principal, project_id=project_id)
    stmt = select(ProjectProgress).where(ProjectProgress.project_id == project.id).order_by(
        ProjectProgress.reported_on, ProjectProgress.percent
    )
    return list((await session.scalars(stmt)).all())
