"""Project money on the ledger. Allocation: the county's funding-source account → the project's account
for that source. Disbursement (拨付): the project's account → the implementing unit or the winning
bidder, against a milestone. Per source, allocated and disbursed never exceed the budget (002 L23:
「资金使用合规合法、与预算相符」); the final payment waits for acceptance (004 L343, §10 X-13); a project
not tied to villages and households receives nothing (003 L117)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import county_of
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.errors import Conflict, RuleViolation
from fupin.ledger import service as ledger
from fupin.ledger.models import LedgerAccount
from fupin.projects import rules
from fupin.projects import service as projects
from fupin.projects.models import Project, ProjectBudget, ProjectFund
from fupin.projects.schemas import FundCreate, Movement, PayeeKind, Source, Status

ZERO = Decimal("0.00")


async def source_account(session: AsyncSession, *, county_code: str, source: Source) -> LedgerAccount:
    """The county's appropriation for one funding source: a budget line that may go negative."""
    return await ledger.ensure_account(
        session, holder_kind="source", holder_ref=county_code, purpose=f"project_{source.value}",
        area_code=county_code, name=f"扶贫项目资金来源 {source.value}", allow_negative=True,
    )


async def project_account(session: AsyncSession, *, project: Project, source: Source) -> LedgerAccount:
    return await ledger.ensure_account(
        session, holder_kind="project", holder_ref=str(project.id), purpose=source.value,
        area_code=project.area_code, name=f"项目资金 {project.name} {source.value}",
    )


async def payee_account(session: AsyncSession, *, project: Project, payee_kind: PayeeKind, payee: str) -> LedgerAccount:
    return await ledger.ensure_account(
        session, holder_kind="implementer", holder_ref=str(project.id), purpose=payee_kind.value,
        area_code=project.area_code, name=payee[:200],
    )


async def _sum(session: AsyncSession, project: Project, movement: Movement, source: Source) -> Decimal:
    total = await session.scalar(
        select(func.coalesce(func.sum(ProjectFund.amount), 0)).where(
            ProjectFund.project_id == project.id, ProjectFund.movement == movement.value,
            ProjectFund.source == source.value,
        )
    )
    return Decimal(total or 0)


def over_budget(what: str, total: Decimal, budget: Decimal, source: Source) -> RuleViolation:
    return RuleViolation(
        "project.over_budget",
        f"{what} from {source.value} would reach {total}, above the budget {budget}",
        f"{source.value} 资金{'下达' if what == 'allocated' else '拨付'}将达 {total} 元,超过预算 {budget} 元",
        extra={"source": source.value, "total": str(total), "budget": str(budget)},
    )


async def record_movement(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, body: FundCreate
) -> ProjectFund:
    """Allocate into, or disburse from, a project, posting the ledger entry with the business row."""
    project = await projects.get_project(session, principal=principal, project_id=project_id, lock=True)
    status = Status(project.status)
    if status not in rules.FUNDABLE:
        raise Conflict(
            "project.not_fundable", f"a {status.value} project cannot move money", f"项目状态 {status.value} 不能收付资金",
        )
    if not await projects.has_beneficiaries(session, project):
        raise projects.no_beneficiaries("receive funds", "拨款")
    budget = Decimal(
        await session.scalar(
            select(ProjectBudget.amount).where(
                ProjectBudget.project_id == project.id, ProjectBudget.source == body.source.value
            )
        )
        or ZERO
    )
    proj_acct = await project_account(session, project=project, source=body.source)
    fund_id = uuid.uuid4()
    reference = f"project:{project.id}:{body.movement.value}:{fund_id}"
    payee_kind: PayeeKind | None = None
    payee: str | None = None
    if body.movement is Movement.allocation:
        if body.payee_kind is not None or body.final:
            raise RuleViolation("project.bad_allocation", "an allocation has no payee and is never final", "资金下达无收款方")
        total = await _sum(session, project, Movement.allocation, body.source) + body.amount
        if total > budget:
            raise over_budget("allocated", total, budget, body.source)
        src = await source_account(session, county_code=county_of(project.area_code), source=body.source)
        entry = await ledger.transfer(
            session, source=src, target=proj_acct, amount=body.amount, kind="project.allocate",
            reference=reference, effective_on=body.effective_on, created_by=principal.username,
            description=f"项目资金下达 {project.name}",
        )
    else:
        if project.final_paid:
            raise Conflict("project.final_payment_made", "the final payment was already made", "尾款已拨付")
        if body.final and status is not Status.accepted:
            raise RuleViolation(
                "project.final_payment_before_acceptance", "the final payment waits for acceptance",
                "项目验收后方可拨付尾款",
            )
        total = await _sum(session, project, Movement.disbursement, body.source) + body.amount
        if total > budget:
            raise over_budget("disbursed", total, budget, body.source)
        # Read the balance fresh: the trigger moves it, so a loaded account object may be stale.
        held = Decimal(await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == proj_acct.id)) or 0)
        if held < body.amount:
            raise RuleViolation(
                "project.insufficient_funds", f"the project holds {held} from {body.source.value}",
                f"项目 {body.source.value} 资金余额 {held} 元不足",
            )
        payee_kind = body.payee_kind or PayeeKind.implementer
        if payee_kind is PayeeKind.bidder:
            bid = await projects.winning_bid(session, project)
            if bid is None:
                raise RuleViolation("project.no_winning_bid", "no winning bidder is recorded", "尚无中标单位")
            payee = bid.bidder
        else:
            payee = project.implementing_unit
        target = await payee_account(session, project=project, payee_kind=payee_kind, payee=payee)
        entry = await ledger.transfer(
            session, source=proj_acct, target=target, amount=body.amount, kind="project.disburse",
            reference=reference, effective_on=body.effective_on, created_by=principal.username,
            description=f"项目资金拨付 {project.name} {body.milestone or ''}".strip(),
        )
        if body.final:
            project.final_paid = True
    row = ProjectFund(
        id=fund_id, project_id=project.id, area_code=project.area_code, movement=body.movement.value,
        source=body.source.value, amount=body.amount, effective_on=body.effective_on, payee_kind=payee_kind,
        payee=payee, milestone=body.milestone, final=body.final, journal_entry_id=entry.id,
        created_by=principal.username,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action=f"project.{body.movement.value}", entity="project", entity_id=project.id,
        area_code=project.area_code, after=body.model_dump(mode="json") | {"payee": payee, "entry": str(entry.id)},
    )
    return row


async def list_movements(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID
) -> tuple[Decimal, list[ProjectFund]]:
    """The project's allocations and disbursements, oldest first, and its total budget."""
    project = await projects.get_project(session, principal=principal, project_id=project_id)
    budget = await session.scalar(
        select(func.coalesce(func.sum(ProjectBudget.amount), 0)).where(ProjectBudget.project_id == project.id)
    )
    rows = await session.scalars(
        select(ProjectFund).where(ProjectFund.project_id == project.id).order_by(ProjectFund.created_at, ProjectFund.id)
    )
    return Decimal(budget or 0), list(rows.all())
