"""Poverty-prevention insurance (防贫保险, 003 L241): the county buys cover for part of its rural
population (「按每人每年50元保费标准为全区10%左右的农村人口购买保险」); claims of monitored people are
assessed by the tiered rule, approved and paid once; the aided household gets a paired cadre
(「对已救助人员明确专人结对帮扶」) and the payout is recorded as an assistance measure.

Money: the premium moves the county appropriation into the county insurance fund (防贫保险金), and
each payout moves money from that fund to the household, each a balanced entry through
`fupin.ledger.service` with a natural reference, so a payout is posted once, ever. The fund may not go
negative: it pays out at most what was put in.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.models import Area
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households import rules as household_rules
from fupin.households.models import Member
from fupin.ledger import service as ledger
from fupin.ledger.models import LedgerAccount
from fupin.monitoring import access, rules
from fupin.monitoring.insurance_schemas import (
    BillRead,
    ClaimCreate,
    ClaimDetail,
    ClaimRead,
    InsurancePolicyCreate,
)
from fupin.monitoring.measures import record_measure
from fupin.monitoring.models import (
    InsuranceClaim,
    InsuranceClaimBill,
    InsurancePolicy,
    MonitoredHousehold,
    MonitoredPerson,
)
from fupin.monitoring.rules import CLOSED, ClaimStatus, MeasureKind, MeasureStatus, Status, Tier
from fupin.monitoring.service import assign_cadre
from fupin.pairing.access import in_directory

PURPOSE = "insurance"
RESERVED = (ClaimStatus.assessed.value, ClaimStatus.approved.value, ClaimStatus.paid.value)


def tiers_of(policy: InsurancePolicy) -> list[Tier]:
    return [Tier(Decimal(t["start"]), Decimal(t["rate"])) for t in policy.tiers]


# --- policies and premiums --------------------------------------------------------------------------


async def create_policy(session: AsyncSession, *, principal: Principal, body: InsurancePolicyCreate) -> InsurancePolicy:
    """A county's cover for a period; periods of one county never overlap (a change is a new period)."""
    if level_of(body.area_code) is not Level.county:
        raise RuleViolation("insurance.policy_not_county", "an insurance policy belongs to a county",
                            "防贫保险须属于县级区划")
    if not visible(principal, body.area_code) or await session.get(Area, body.area_code) is None:
        raise not_found("area")
    tiers = [Tier(t.start, t.rate) for t in body.tiers]
    rules.check_tiers(tiers)
    overlap = await session.scalar(select(InsurancePolicy.id).where(
        InsurancePolicy.area_code == body.area_code, InsurancePolicy.effective_from <= body.effective_to,
        InsurancePolicy.effective_to >= body.effective_from).limit(1))
    if overlap is not None:
        raise Conflict("insurance.policy_overlaps", "another policy of the county covers part of this period",
                       "与本县其他保险期间重叠", extra={"policy_id": str(overlap)})
    policy = InsurancePolicy(
        id=uuid.uuid4(), area_code=body.area_code, name=body.name, insurer=body.insurer,
        effective_from=body.effective_from, effective_to=body.effective_to, insured_persons=body.insured_persons,
        premium_per_person=body.premium_per_person, premium_total=body.premium_per_person * body.insured_persons,
        deductible=body.deductible, annual_cap=body.annual_cap,
        tiers=[{"start": str(t.start), "rate": str(t.rate)} for t in tiers], created_by=principal.username,
    )
    session.add(policy)
    await session.flush()
    await audit.record(session, principal, action="insurance.policy.create", entity="insurance_policy",
                       entity_id=policy.id, area_code=policy.area_code,
                       after={"name": policy.name, "effective_from": policy.effective_from,
                              "effective_to": policy.effective_to, "insured_persons": policy.insured_persons,
                              "premium_total": policy.premium_total, "deductible": policy.deductible,
                              "annual_cap": policy.annual_cap, "tiers": policy.tiers})
    return policy


async def list_policies(session: AsyncSession, *, principal: Principal) -> list[InsurancePolicy]:
    stmt = (select(InsurancePolicy).where(in_directory(principal, InsurancePolicy.area_code))
            .order_by(InsurancePolicy.area_code, InsurancePolicy.effective_from))
    return list((await session.scalars(stmt)).all())


async def get_policy(session: AsyncSession, *, principal: Principal, policy_id: uuid.UUID,
                     lock: bool = False) -> InsurancePolicy:
    stmt = select(InsurancePolicy).where(InsurancePolicy.id == policy_id,
                                         in_directory(principal, InsurancePolicy.area_code))
    policy = await session.scalar(stmt.with_for_update() if lock else stmt)
    if policy is None:
        raise not_found("insurance_policy")
    return policy


async def _fund(session: AsyncSession, county: str) -> LedgerAccount:
    return await ledger.ensure_account(session, holder_kind="finance_bureau", holder_ref=county, purpose=PURPOSE,
                                       area_code=county, name="防贫保险金")


async def post_premium(session: AsyncSession, *, principal: Principal, policy_id: uuid.UUID, on: date
                       ) -> InsurancePolicy:
    """The finance bureau funds the county insurance fund with the policy's premium, once."""
    policy = await get_policy(session, principal=principal, policy_id=policy_id, lock=True)
    if not visible(principal, policy.area_code):
        raise not_found("insurance_policy")
    if policy.premium_entry_id is not None:
        raise Conflict("insurance.premium_posted", "the premium of this policy is posted already", "该保险保费已入账")
    if on > business_date():
        raise RuleViolation("monitoring.future_date", "a posting cannot be dated in the future", "记账日期不能晚于今天")
    source = await ledger.ensure_account(session, holder_kind="source", holder_ref=policy.area_code, purpose=PURPOSE,
                                         area_code=policy.area_code, name="县财政防贫保险资金", allow_negative=True)
    entry = await ledger.transfer(
        session, source=source, target=await _fund(session, policy.area_code), amount=policy.premium_total,
        kind="insurance.premium", reference=f"insurance.premium:{policy.id}", effective_on=on,
        description=f"{policy.name} 保费 {policy.insured_persons}人×{policy.premium_per_person}元",
        created_by=principal.username,
    )
    policy.premium_entry_id, policy.premium_posted_on = entry.id, on
    await session.flush()
    await audit.record(session, principal, action="insurance.premium.post", entity="insurance_policy",
                       entity_id=policy.id, area_code=policy.area_code,
                       after={"amount": policy.premium_total, "entry_id": entry.id, "on": on})
    return policy


# --- claims ------------------------------------------------------------------------------------------


async def _person(session: AsyncSession, mh: MonitoredHousehold, person_id: uuid.UUID) -> tuple[str, str]:
    """(name, masked ID number) of a member of the household."""
    if mh.household_id is not None:
        m = await session.scalar(select(Member).where(Member.id == person_id, Member.household_id == mh.household_id,
                                                      Member.active))
        found = (m.name, m.id_number) if m else None
    else:
        p = await session.scalar(select(MonitoredPerson).where(
            MonitoredPerson.id == person_id, MonitoredPerson.monitored_household_id == mh.id, MonitoredPerson.active))
        found = (p.name, p.id_number) if p else None
    if found is None:
        raise not_found("person")
    return found[0], household_rules.mask_id(found[1])


async def _policy_for_bills(session: AsyncSession, county: str, bill_dates: list[date]) -> InsurancePolicy:
    first, last = min(bill_dates), max(bill_dates)
    policy = await session.scalar(select(InsurancePolicy).where(
        InsurancePolicy.area_code == county, InsurancePolicy.effective_from <= first,
        InsurancePolicy.effective_to >= first))
    if policy is None:
        raise RuleViolation("insurance.no_policy", "no insurance policy of the county covers the bill date",
                            "本县无覆盖该票据日期的防贫保险")
    if last > policy.effective_to:
        raise RuleViolation("insurance.bills_outside_policy", "all bills of a claim fall in one policy period",
                            "同一理赔的票据须在同一保险期间内")
    return policy


async def submit_claim(session: AsyncSession, *, principal: Principal, body: ClaimCreate) -> InsuranceClaim:
    """A monitored person's claim with their bills; a bill already claimed in the county is refused."""
    mh = await access.load(session, principal=principal, monitored_household_id=body.monitored_household_id)
    if Status(mh.status) in CLOSED:
        raise Conflict("insurance.household_not_monitored", "the household is not in a monitoring cycle",
                       "该户不在监测期内", extra={"status": mh.status})
    if body.submitted_on > business_date() or any(b.bill_date > body.submitted_on for b in body.bills):
        raise RuleViolation("insurance.bad_dates", "bills precede the submission, which is not in the future",
                            "票据日期须早于申请日期,申请日期不能晚于今天")
    keys = [(b.hospital, b.bill_no) for b in body.bills]
    if len(set(keys)) != len(keys):
        raise RuleViolation("insurance.bill_repeated", "a bill appears twice in the claim", "同一票据重复填写")
    name, masked = await _person(session, mh, body.person_id)
    county = county_of(mh.area_code)
    policy = await _policy_for_bills(session, county, [b.bill_date for b in body.bills])
    claim = InsuranceClaim(
        id=uuid.uuid4(), area_code=mh.area_code, policy_id=policy.id, monitored_household_id=mh.id,
        person_id=body.person_id, person_name=name, id_masked=masked,
        total_cost=sum((b.total_cost for b in body.bills), Decimal("0.00")),
        out_of_pocket=sum((b.out_of_pocket for b in body.bills), Decimal("0.00")),
        status=ClaimStatus.submitted.value, submitted_on=body.submitted_on, submitted_by=principal.username,
    )
    await _insert_claim(session, claim, county, body)
    await audit.record(session, principal, action="insurance.claim.submit", entity="insurance_claim",
                       entity_id=claim.id, area_code=claim.area_code,
                       after={"monitored_household_id": mh.id, "person_id": body.person_id,
                              "total_cost": claim.total_cost, "out_of_pocket": claim.out_of_pocket,
                              "bills": [f"{h}/{n}" for h, n in keys], "policy_id": policy.id})
    return claim


async def _insert_claim(session: AsyncSession, claim: InsuranceClaim, county: str, body: ClaimCreate) -> None:
    """Claim and bills in a savepoint: the partial unique index on active bills refuses a bill claimed
    before, even one in a village the caller cannot see, or one submitted at the same moment."""
    try:
        async with session.begin_nested():
            session.add(claim)
            await session.flush()
            session.add_all([InsuranceClaimBill(
                claim_id=claim.id, area_code=claim.area_code, county_code=county, hospital=b.hospital,
                bill_no=b.bill_no, bill_date=b.bill_date, total_cost=b.total_cost, out_of_pocket=b.out_of_pocket,
                active=True) for b in body.bills])
            await session.flush()
    except IntegrityError:
        raise Conflict("insurance.bill_already_claimed", "a bill of this claim has been claimed already",
                       "该票据已申请过理赔") from None


async def _claim_for_update(session: AsyncSession, principal: Principal, claim_id: uuid.UUID) -> InsuranceClaim:
    claim = await session.scalar(scoped(select(InsuranceClaim), principal, InsuranceClaim.area_code)
                                 .where(InsuranceClaim.id == claim_id, claim_visible(principal)).with_for_update())
    if claim is None:
        raise not_found("insurance_claim")
    return claim


def claim_visible(principal: Principal) -> ColumnElement[bool]:
    """A cadre sees the claims of the households they are responsible for."""
    return InsuranceClaim.monitored_household_id.in_(
        select(MonitoredHousehold.id).where(access.household_visible(principal)))


def _expect(claim: InsuranceClaim, *states: ClaimStatus) -> None:
    if ClaimStatus(claim.status) not in states:
        raise Conflict("insurance.invalid_transition", f"not possible while the claim is {claim.status}",
                       f"理赔当前状态 {claim.status} 不能办理该步骤", extra={"status": claim.status})


def _check_date(claim: InsuranceClaim, on: date) -> None:
    last = max(d for d in (claim.submitted_on, claim.assessed_on, claim.approved_on) if d is not None)
    if on > business_date() or on < last:
        raise RuleViolation("insurance.step_date_order", "the date is in the future or precedes an earlier step",
                            "办理日期不能晚于今天或早于上一步骤")


async def assess(session: AsyncSession, *, principal: Principal, claim_id: uuid.UUID, on: date,
                 opinion: str) -> InsuranceClaim:
    """The poverty office computes the payout: tiers over the out-of-pocket cost after the deductible,
    limited by what is left of the person's annual cap in the policy period."""
    claim = await _claim_for_update(session, principal, claim_id)
    _expect(claim, ClaimStatus.submitted)
    _check_date(claim, on)
    policy = await session.get(InsurancePolicy, claim.policy_id)
    assert policy is not None
    reserved = await session.scalar(select(func.coalesce(func.sum(InsuranceClaim.payable), 0)).where(
        InsuranceClaim.person_id == claim.person_id, InsuranceClaim.policy_id == policy.id,
        InsuranceClaim.status.in_(RESERVED), InsuranceClaim.id != claim.id))
    claim.payable = rules.payout(claim.out_of_pocket, policy.deductible, tiers_of(policy), cap=policy.annual_cap,
                                 paid_this_year=Decimal(reserved or 0))
    claim.status, claim.assessed_on, claim.assessed_by, claim.opinion = (
        ClaimStatus.assessed.value, on, principal.username, opinion)
    await session.flush()
    await _audit_step(session, principal, claim, "assess", ClaimStatus.submitted)
    return claim


async def approve(session: AsyncSession, *, principal: Principal, claim_id: uuid.UUID, on: date,
                  opinion: str) -> InsuranceClaim:
    claim = await _claim_for_update(session, principal, claim_id)
    _expect(claim, ClaimStatus.assessed)
    _check_date(claim, on)
    if not claim.payable:
        raise RuleViolation("insurance.nothing_payable", "the assessed payout is 0.00: reject the claim instead",
                            "核定赔付金额为0,请作不予赔付处理")
    claim.status, claim.approved_on, claim.approved_by = ClaimStatus.approved.value, on, principal.username
    claim.opinion = opinion or claim.opinion
    await session.flush()
    await _audit_step(session, principal, claim, "approve", ClaimStatus.assessed)
    return claim


async def reject(session: AsyncSession, *, principal: Principal, claim_id: uuid.UUID, on: date,
                 opinion: str) -> InsuranceClaim:
    """The assessor refuses a submitted or assessed claim, the approver an assessed one; the bills are
    released so a corrected claim can be made."""
    claim = await _claim_for_update(session, principal, claim_id)
    before = ClaimStatus(claim.status)
    _expect(claim, *((ClaimStatus.assessed,) if principal.role is Role.finance_bureau
                     else (ClaimStatus.submitted, ClaimStatus.assessed)))
    _check_date(claim, on)
    if not opinion.strip():
        raise RuleViolation("insurance.opinion_required", "a rejection states its reason", "不予赔付须写明理由")
    claim.status, claim.rejected_on, claim.opinion = ClaimStatus.rejected.value, on, opinion
    bills = await session.scalars(select(InsuranceClaimBill).where(InsuranceClaimBill.claim_id == claim.id))
    for bill in bills:
        bill.active = False
    await session.flush()
    await _audit_step(session, principal, claim, "reject", before)
    return claim


async def _audit_step(session: AsyncSession, principal: Principal, claim: InsuranceClaim, step: str,
                      before: ClaimStatus) -> None:
    await audit.record(session, principal, action=f"insurance.claim.{step}", entity="insurance_claim",
                       entity_id=claim.id, area_code=claim.area_code, before={"status": before.value},
                       after={"status": claim.status, "payable": claim.payable, "opinion": claim.opinion})


async def _ensure_cadre(session: AsyncSession, principal: Principal, mh: MonitoredHousehold,
                        cadre_id: uuid.UUID | None, on: date) -> None:
    """「对已救助人员明确专人结对帮扶」: the aided household has a responsible cadre, or gets one now (named
    on the monitored household, under the pairing domain's cadre rules)."""
    if await access.responsible_cadre(session, mh) is not None:
        return
    if cadre_id is None:
        raise RuleViolation("insurance.cadre_required",
                            "the aided household has no paired cadre: name one (cadre_id) to pay",
                            "已救助人员须明确专人结对帮扶,请指定帮扶干部")
    await assign_cadre(session, principal=principal, monitored_household_id=mh.id, cadre_id=cadre_id, on=on)


async def pay(session: AsyncSession, *, principal: Principal, claim_id: uuid.UUID, on: date, opinion: str,
              cadre_id: uuid.UUID | None) -> InsuranceClaim:
    """Pay an approved claim once: fund → household, a cadre paired, the payout recorded as a measure.
    The claim row is locked, so a second or concurrent payment finds it paid (409)."""
    claim = await _claim_for_update(session, principal, claim_id)
    _expect(claim, ClaimStatus.approved)
    _check_date(claim, on)
    mh = await access.load(session, principal=principal, monitored_household_id=claim.monitored_household_id,
                           lock=True)
    await _ensure_cadre(session, principal, mh, cadre_id, on)
    assert claim.payable is not None
    county = county_of(claim.area_code)
    fund = await _fund(session, county)
    if fund.balance < claim.payable:
        raise RuleViolation("insurance.fund_insufficient", f"the insurance fund holds {fund.balance}",
                            f"防贫保险金余额不足({fund.balance} 元)", status=409,
                            extra={"balance": str(fund.balance)})
    holder = ("household", str(mh.household_id)) if mh.household_id else ("monitored_household", str(mh.id))
    target = await ledger.ensure_account(session, holder_kind=holder[0], holder_ref=holder[1], purpose=PURPOSE,
                                         area_code=mh.area_code)
    entry = await ledger.transfer(session, source=fund, target=target, amount=claim.payable,
                                  kind="insurance.payout", reference=f"insurance.payout:{claim.id}", effective_on=on,
                                  description=f"防贫保险赔付 {claim.person_name}", created_by=principal.username)
    claim.status, claim.paid_on, claim.paid_by, claim.entry_id = ClaimStatus.paid.value, on, principal.username, entry.id
    claim.opinion = opinion or claim.opinion
    await session.flush()
    if Status(mh.status) not in CLOSED:
        await record_measure(session, principal=principal, mh=mh, kind=MeasureKind.insurance,
                             description=f"防贫保险赔付({claim.person_name})", responsible_unit="县财政局",
                             cadre_id=await access.responsible_cadre(session, mh), started_on=on,
                             amount=claim.payable, status=MeasureStatus.done, claim_id=claim.id)
    await _audit_step(session, principal, claim, "pay", ClaimStatus.approved)
    return claim


async def claim_detail(session: AsyncSession, *, principal: Principal, claim_id: uuid.UUID) -> ClaimDetail:
    claim = await session.scalar(scoped(select(InsuranceClaim), principal, InsuranceClaim.area_code)
                                 .where(InsuranceClaim.id == claim_id, claim_visible(principal)))
    if claim is None:
        raise not_found("insurance_claim")
    bills = (await session.scalars(select(InsuranceClaimBill).where(InsuranceClaimBill.claim_id == claim.id)
                                   .order_by(InsuranceClaimBill.bill_date, InsuranceClaimBill.bill_no))).all()
    return ClaimDetail(**ClaimRead.model_validate(claim).model_dump(),
                       bills=[BillRead.model_validate(b) for b in bills])


async def list_claims(
    session: AsyncSession, *, principal: Principal, status: ClaimStatus | None,
    monitored_household_id: uuid.UUID | None, limit: int, after: uuid.UUID | None,
) -> list[InsuranceClaim]:
    stmt = scoped(select(InsuranceClaim), principal, InsuranceClaim.area_code).where(claim_visible(principal))
    conditions = []
    if status is not None:
        conditions.append(InsuranceClaim.status == status.value)
    if monitored_household_id is not None:
        conditions.append(InsuranceClaim.monitored_household_id == monitored_household_id)
    if after is not None:
        conditions.append(InsuranceClaim.id > after)
    if conditions:
        stmt = stmt.where(and_(*conditions))
    return list((await session.scalars(stmt.order_by(InsuranceClaim.id).limit(limit))).all())
