"""Loan configuration and preconditions: product rules, township readiness, annual quotas, loan
certificates (贷款证) and the holiday table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from fupin.areas.codes import Level, county_of, level_of
from fupin.areas.scope import scoped, visible
from fupin.audit import service as audit
from fupin.auth.permissions import Perm, allowed
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import Conflict, RuleViolation, not_found
from fupin.households.models import Household
from fupin.loans.models import (
    LoanApplication,
    LoanCertificate,
    LoanHoliday,
    LoanHolidayYear,
    LoanProductRule,
    LoanQuota,
    LoanTownshipReadiness,
)
from fupin.loans.statuses import CertificateStatus
from fupin.money import ZERO
from fupin.paging import after, page

APPROVED_STATES = ("approved", "disbursed", "repaid", "overdue")


@dataclass(frozen=True)
class ProductTerms:
    product: str
    approval_threshold: Decimal | None
    max_amount: Decimal | None
    per_member: bool
    max_term_months: int


# Defaults when a county has set nothing: the regulation's household loan (第七条: ¥20,000 "原则上",
# more with county approval, ≤ 12 months), 特惠贷 ¥50,000 per member for the 3-year pool, enterprise uncapped.
DEFAULT_TERMS = {
    "household": ProductTerms("household", Decimal("20000.00"), Decimal("50000.00"), False, 12),
    "tehuidai": ProductTerms("tehuidai", None, Decimal("50000.00"), True, 36),
    "enterprise": ProductTerms("enterprise", None, None, False, 12),
}


def _require_visible(principal: Principal, code: str, entity: str) -> None:
    if not visible(principal, code):
        raise not_found(entity)


def _require_level(code: str, level: Level, field: str) -> None:
    if level_of(code) is not level:
        raise RuleViolation("area.wrong_level", f"{field} must be a {level} code", f"{field} 必须是{level}级区划代码")


async def set_product_rule(
    session: AsyncSession, *, principal: Principal, county_code: str, product: str,
    approval_threshold: Decimal | None, max_amount: Decimal | None, per_member: bool, max_term_months: int,
    effective_from: date,
) -> LoanProductRule:
    _require_level(county_code, Level.county, "county_code")
    _require_visible(principal, county_code, "county")
    rule = LoanProductRule(
        county_code=county_code, product=product, approval_threshold=approval_threshold, max_amount=max_amount,
        per_member=per_member, max_term_months=max_term_months, effective_from=effective_from,
    )
    session.add(rule)
    try:
        async with session.begin_nested():
            await session.flush()
    except Exception as exc:  # unique (county, product, effective_from)
        if "county_product_from" in str(exc):
            raise Conflict("loan.rule_exists", "a rule for this product starts that day already",
                           "该产品在该日期已有规则") from None
        raise
    await audit.record(session, principal, action="loan.rule.create", entity="loan_product_rule", entity_id=rule.id,
                       area_code=county_code, after={"product": product, "max_amount": max_amount,
                                                     "threshold": approval_threshold, "term": max_term_months})
    return rule


async def list_product_rules(session: AsyncSession, *, principal: Principal, county_code: str) -> list[LoanProductRule]:
    if not (visible(principal, county_code) or county_of(principal.area_code) == county_code):
        raise not_found("county")
    stmt = select(LoanProductRule).where(LoanProductRule.county_code == county_code)
    return list((await session.scalars(stmt.order_by(LoanProductRule.product, LoanProductRule.effective_from))).all())


async def terms_for(session: AsyncSession, *, county_code: str, product: str, on: date) -> ProductTerms:
    """The rule in force on `on` (latest effective_from ≤ on), else the default."""
    rule = await session.scalar(
        select(LoanProductRule)
        .where(LoanProductRule.county_code == county_code, LoanProductRule.product == product,
               LoanProductRule.effective_from <= on)
        .order_by(LoanProductRule.effective_from.desc()).limit(1)
    )
    if rule is None:
        return DEFAULT_TERMS[product]
    return ProductTerms(product, rule.approval_threshold, rule.max_amount, rule.per_member, rule.max_term_months)


async def set_readiness(
    session: AsyncSession, *, principal: Principal, township_code: str, ready: bool, note: str
) -> LoanTownshipReadiness:
    _require_level(township_code, Level.township, "township_code")
    _require_visible(principal, township_code, "township")
    row = await session.get(LoanTownshipReadiness, township_code, with_for_update=True)
    before = {"ready": row.ready} if row else None
    if row is None:
        row = LoanTownshipReadiness(area_code=township_code, ready=ready, note=note)
        session.add(row)
    else:
        row.ready, row.note = ready, note
    await session.flush()
    await audit.record(session, principal, action="loan.township_readiness", entity="loan_township_readiness",
                       entity_id=township_code, area_code=township_code, before=before, after={"ready": ready})
    return row


async def get_readiness(session: AsyncSession, *, principal: Principal, township_code: str) -> LoanTownshipReadiness:
    _require_level(township_code, Level.township, "township_code")
    _require_visible(principal, township_code, "township")
    row = await session.get(LoanTownshipReadiness, township_code)
    return row or LoanTownshipReadiness(area_code=township_code, ready=False, note="")


async def township_ready(session: AsyncSession, township_code: str) -> bool:
    return bool(await session.scalar(
        select(LoanTownshipReadiness.ready).where(LoanTownshipReadiness.area_code == township_code)
    ))


async def quota_used(session: AsyncSession, township_code: str, year: int) -> Decimal:
    """Amounts approved in the township that year (household and 特惠贷; enterprise loans sit outside the plan)."""
    used = await session.scalar(
        select(func.coalesce(func.sum(LoanApplication.amount), 0)).where(
            LoanApplication.township_code == township_code,
            LoanApplication.applicant_kind == "household",
            LoanApplication.status.in_(APPROVED_STATES),
            LoanApplication.decided_on >= date(year, 1, 1), LoanApplication.decided_on < date(year + 1, 1, 1),
        )
    )
    return Decimal(used or 0)


async def set_quota(
    session: AsyncSession, *, principal: Principal, township_code: str, year: int, amount: Decimal
) -> tuple[LoanQuota, Decimal]:
    _require_level(township_code, Level.township, "township_code")
    _require_visible(principal, township_code, "township")
    ins = insert(LoanQuota).values(id=uuid.uuid4(), area_code=township_code, year=year, amount=amount)
    stmt = (
        # excluded.updated_at is the insert's default, now(): Citus takes no volatile call in DO UPDATE SET
        ins.on_conflict_do_update(index_elements=["area_code", "year", "county"],
                                  set_={"amount": amount, "updated_at": ins.excluded.updated_at})
        .returning(LoanQuota.id)
    )
    quota_id = await session.scalar(stmt)
    quota = await session.get(LoanQuota, quota_id, populate_existing=True)
    assert quota is not None
    used = await quota_used(session, township_code, year)
    if amount < used:
        raise RuleViolation("loan.quota_below_use", f"{used} is already approved this year", f"本年已审批 {used} 元",
                            extra={"used": str(used)})
    await audit.record(session, principal, action="loan.quota.set", entity="loan_quota", entity_id=quota.id,
                       area_code=township_code, after={"year": year, "amount": amount})
    return quota, used


async def list_quotas(session: AsyncSession, *, principal: Principal, year: int) -> list[tuple[LoanQuota, Decimal]]:
    rows = (await session.scalars(scoped(select(LoanQuota).where(LoanQuota.year == year), principal,
                                         LoanQuota.area_code).order_by(LoanQuota.area_code))).all()
    return [(q, await quota_used(session, q.area_code, year)) for q in rows]


async def check_quota(session: AsyncSession, *, township_code: str, year: int, amount: Decimal) -> None:
    """Refuse an approval beyond the remaining plan; the quota row is locked so approvals queue."""
    quota = await session.scalar(
        select(LoanQuota).where(LoanQuota.area_code == township_code, LoanQuota.year == year).with_for_update()
    )
    total = quota.amount if quota else ZERO
    remaining = total - await quota_used(session, township_code, year)
    if amount > remaining:
        raise RuleViolation(
            "loan.quota_exceeded", f"the township's {year} loan plan has {remaining} left",
            f"本乡镇{year}年贷款计划剩余 {remaining} 元", extra={"remaining": str(remaining)},
        )


async def review_certificate(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, credit_rating: str, opinion: str, on: date
) -> LoanCertificate:
    household = await session.scalar(scoped(select(Household).where(Household.id == household_id), principal,
                                            Household.area_code))
    if household is None:
        raise not_found("household")
    existing = await session.scalar(select(LoanCertificate).where(LoanCertificate.household_id == household_id))
    if existing is not None:
        raise Conflict("loan.certificate_exists", "the household already has a loan certificate", "该户已有贷款证")
    cert = LoanCertificate(area_code=household.area_code, household_id=household_id, status=CertificateStatus.village_reviewed,
                           credit_rating=credit_rating, village_opinion=opinion, village_reviewed_on=on)
    session.add(cert)
    await session.flush()
    await audit.record(session, principal, action="loan.certificate.review", entity="loan_certificate",
                       entity_id=cert.id, area_code=cert.area_code, after={"rating": credit_rating})
    return cert


async def get_certificate(session: AsyncSession, *, principal: Principal, certificate_id: uuid.UUID,
                          lock: bool = False) -> LoanCertificate:
    stmt = scoped(select(LoanCertificate).where(LoanCertificate.id == certificate_id), principal,
                  LoanCertificate.area_code)
    cert = await session.scalar(stmt.with_for_update() if lock else stmt)
    if cert is None:
        raise not_found("loan_certificate")
    return cert


async def issue_certificate(
    session: AsyncSession, *, principal: Principal, certificate_id: uuid.UUID, number: str, on: date
) -> LoanCertificate:
    cert = await get_certificate(session, principal=principal, certificate_id=certificate_id, lock=True)
    if cert.status != "village_reviewed":
        raise Conflict("loan.certificate_already_issued", "the certificate is issued already", "贷款证已发放")
    if on < cert.village_reviewed_on:
        raise RuleViolation("loan.step_date_order", "issue date precedes the village review", "发证日期早于村委会初审")
    cert.status, cert.number, cert.issued_on, cert.issued_by = CertificateStatus.issued, number, on, principal.username
    await session.flush()
    await audit.record(session, principal, action="loan.certificate.issue", entity="loan_certificate",
                       entity_id=cert.id, area_code=cert.area_code, after={"number": number})
    return cert


def certificate_actions(status: str, role: Role) -> list[str]:
    """What `role` may do next with a certificate in `status`: only the coop's issue of a reviewed one."""
    return ["issue"] if status == "village_reviewed" and allowed(role, Perm.loan_certificate_issue) else []


async def list_certificates(session: AsyncSession, *, principal: Principal, status: str | None, limit: int,
                            cursor: str | None) -> tuple[list[LoanCertificate], str | None]:
    stmt = scoped(select(LoanCertificate), principal, LoanCertificate.area_code)
    if status:
        stmt = stmt.where(LoanCertificate.status == status)
    stmt = after(stmt, (LoanCertificate.created_at, LoanCertificate.id), cursor, limit)
    return page((await session.scalars(stmt)).all(), limit, lambda c: (c.created_at, c.id))


async def set_holidays(
    session: AsyncSession, *, principal: Principal, year: int, holidays: list[date], workdays: list[date],
    complete: bool,
) -> tuple[bool, list[date], list[date]]:
    if any(d.year != year for d in [*holidays, *workdays]) or set(holidays) & set(workdays):
        raise RuleViolation("calendar.invalid_days", "days must lie in the year and be either holiday or workday",
                            "日期须属于该年且不能同时为节假日和工作日")
    await session.execute(delete(LoanHoliday).where(LoanHoliday.day >= date(year, 1, 1),
                                                    LoanHoliday.day < date(year + 1, 1, 1)))
    rows = [{"day": d, "kind": "holiday", "name": ""} for d in holidays] + [
        {"day": d, "kind": "workday", "name": ""} for d in workdays]
    if rows:
        await session.execute(insert(LoanHoliday).values(rows))
    if complete:
        await session.execute(insert(LoanHolidayYear).values(year=year).on_conflict_do_nothing())
    else:
        await session.execute(delete(LoanHolidayYear).where(LoanHolidayYear.year == year))
    await audit.record(session, principal, action="loan.holidays.set", entity="loan_holiday", entity_id=year,
                       after={"holidays": sorted(holidays), "workdays": sorted(workdays), "complete": complete})
    return await get_holidays(session, year=year)


async def get_holidays(session: AsyncSession, *, year: int) -> tuple[bool, list[date], list[date]]:
    rows = (await session.execute(select(LoanHoliday.day, LoanHoliday.kind).where(
        LoanHoliday.day >= date(year, 1, 1), LoanHoliday.day < date(year + 1, 1, 1)).order_by(LoanHoliday.day))).all()
    complete = await session.get(LoanHolidayYear, year) is not None
    return complete, [d for d, k in rows if k == "holiday"], [d for d, k in rows if k == "workday"]
