"""Poverty-prevention insurance (防贫保险): policies and premiums, claims assessed → approved → paid once."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.monitoring import insurance
from fupin.monitoring.insurance_schemas import (
    ClaimCreate,
    ClaimDetail,
    ClaimRead,
    ClaimStepIn,
    InsurancePolicyCreate,
    InsurancePolicyRead,
    PremiumIn,
)
from fupin.monitoring.rules import ClaimStatus
from fupin.schema import Page
from fupin_api.deps import Authorized, SessionDep
from fupin_api.idempotency import WriteRoute
from fupin_api.problems import problem_responses

router = APIRouter(route_class=WriteRoute, tags=["insurance"])
STEP_ERRORS = ("Errors: another area's claim (404), `insurance.invalid_transition` (409), "
               "`insurance.step_date_order` (422).")


@router.post(
    "/insurance-policies", summary="Set the county's poverty-prevention insurance for a period", status_code=201,
    response_model=InsurancePolicyRead, responses=problem_responses(403, 404, 409),
    description="Poverty office. Insured population and premium per person (total = persons × premium), payout "
                "tiers over out-of-pocket cost after the deductible, the annual cap per person. Never edited; "
                "periods of a county never overlap (`insurance.policy_overlaps`, 409). Tiers start at 0.00 and "
                "increase (`insurance.tiers_invalid`, 422).",
)
async def create_policy(body: InsurancePolicyCreate, session: SessionDep,
                        principal: Principal = Authorized(Perm.insurance_policy_write)) -> InsurancePolicyRead:
    return InsurancePolicyRead.model_validate(await insurance.create_policy(session, principal=principal, body=body))


@router.get(
    "/insurance-policies", summary="Your county's insurance policies", response_model=Page[InsurancePolicyRead],
    responses=problem_responses(403),
    description="Every staff role; a township or village reads its county's. Changes nothing.",
)
async def list_policies(session: SessionDep, principal: Principal = Authorized(Perm.insurance_read)
                        ) -> Page[InsurancePolicyRead]:
    rows = await insurance.list_policies(session, principal=principal)
    return Page[InsurancePolicyRead](items=[InsurancePolicyRead.model_validate(p) for p in rows])


@router.get(
    "/insurance-policies/{policy_id}", summary="One insurance policy", response_model=InsurancePolicyRead,
    responses=problem_responses(403, 404), description="As the list. Another county's policy answers 404.",
)
async def get_policy(policy_id: uuid.UUID, session: SessionDep,
                     principal: Principal = Authorized(Perm.insurance_read)) -> InsurancePolicyRead:
    return InsurancePolicyRead.model_validate(
        await insurance.get_policy(session, principal=principal, policy_id=policy_id))


@router.post(
    "/insurance-policies/{policy_id}/premium", summary="Post the premium into the county insurance fund, once",
    response_model=InsurancePolicyRead, responses=problem_responses(403, 404, 409),
    description="Finance bureau. One balanced entry: the county appropriation → the county insurance fund "
                "(防贫保险金), the policy's premium total. Twice: `insurance.premium_posted` (409).",
)
async def post_premium(policy_id: uuid.UUID, body: PremiumIn, session: SessionDep,
                       principal: Principal = Authorized(Perm.insurance_premium_post)) -> InsurancePolicyRead:
    policy = await insurance.post_premium(session, principal=principal, policy_id=policy_id, on=body.on)
    return InsurancePolicyRead.model_validate(policy)


@router.post(
    "/insurance-claims", summary="Submit a monitored person's claim with their bills", status_code=201,
    response_model=ClaimDetail, responses=problem_responses(403, 404, 409),
    description="Village committee or station. The person belongs to a household in a monitoring cycle; the "
                "bills fall in one policy period. A bill (hospital + number) is claimed once in the county: a "
                "duplicate submission is refused (`insurance.bill_already_claimed`, 409), so it is paid once. "
                "Other errors: `insurance.household_not_monitored` (409), `insurance.no_policy`, "
                "`insurance.bills_outside_policy`, `insurance.bad_dates` (422).",
)
async def submit_claim(body: ClaimCreate, session: SessionDep,
                       principal: Principal = Authorized(Perm.insurance_claim_submit)) -> ClaimDetail:
    claim = await insurance.submit_claim(session, principal=principal, body=body)
    return await insurance.claim_detail(session, principal=principal, claim_id=claim.id)


@router.get(
    "/insurance-claims", summary="Claims in your area", response_model=Page[ClaimRead],
    responses=problem_responses(403),
    description="Every staff role within its area; a cadre sees their households' claims. Changes nothing.",
)
async def list_claims(
    session: SessionDep, principal: Principal = Authorized(Perm.insurance_read), status: ClaimStatus | None = None,
    monitored_household_id: uuid.UUID | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: uuid.UUID | None = None,
) -> Page[ClaimRead]:
    rows = await insurance.list_claims(session, principal=principal, status=status,
                                       monitored_household_id=monitored_household_id, limit=limit, after=cursor)
    items = [ClaimRead.model_validate(c) for c in rows]
    return Page[ClaimRead](items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)


@router.get(
    "/insurance-claims/{claim_id}", summary="One claim with its bills", response_model=ClaimDetail,
    responses=problem_responses(403, 404), description="As the list. Another area's claim answers 404.",
)
async def get_claim(claim_id: uuid.UUID, session: SessionDep,
                    principal: Principal = Authorized(Perm.insurance_read)) -> ClaimDetail:
    return await insurance.claim_detail(session, principal=principal, claim_id=claim_id)


@router.post(
    "/insurance-claims/{claim_id}/assess", summary="Assess a claim: compute the payout by the policy's tiers",
    response_model=ClaimRead, responses=problem_responses(403, 404, 409),
    description="Poverty office. `payable` = Σ tier rate × the part of the out-of-pocket cost above the "
                "deductible in that tier, half-up to the fen, limited by what is left of the person's annual cap. "
                + STEP_ERRORS,
)
async def assess(claim_id: uuid.UUID, body: ClaimStepIn, session: SessionDep,
                 principal: Principal = Authorized(Perm.insurance_claim_assess)) -> ClaimRead:
    claim = await insurance.assess(session, principal=principal, claim_id=claim_id, on=body.on, opinion=body.opinion)
    return ClaimRead.model_validate(claim)


@router.post(
    "/insurance-claims/{claim_id}/approve", summary="Approve an assessed claim", response_model=ClaimRead,
    responses=problem_responses(403, 404, 409),
    description="Finance bureau. A payout of 0.00 is not approved (`insurance.nothing_payable`, 422). " + STEP_ERRORS,
)
async def approve(claim_id: uuid.UUID, body: ClaimStepIn, session: SessionDep,
                  principal: Principal = Authorized(Perm.insurance_claim_approve)) -> ClaimRead:
    claim = await insurance.approve(session, principal=principal, claim_id=claim_id, on=body.on, opinion=body.opinion)
    return ClaimRead.model_validate(claim)


@router.post(
    "/insurance-claims/{claim_id}/reject", summary="Reject a claim, releasing its bills", response_model=ClaimRead,
    responses=problem_responses(403, 404, 409),
    description="Poverty office (a submitted or assessed claim) or finance bureau (an assessed one), with a "
                "reason (`insurance.opinion_required`, 422). " + STEP_ERRORS,
)
async def reject(claim_id: uuid.UUID, body: ClaimStepIn, session: SessionDep,
                 principal: Principal = Authorized(Perm.insurance_claim_reject)) -> ClaimRead:
    claim = await insurance.reject(session, principal=principal, claim_id=claim_id, on=body.on, opinion=body.opinion)
    return ClaimRead.model_validate(claim)


@router.post(
    "/insurance-claims/{claim_id}/pay", summary="Pay an approved claim once, from the county insurance fund",
    response_model=ClaimRead, responses=problem_responses(403, 404, 409),
    description="Finance bureau. One balanced entry (county insurance fund → household), the payout recorded as "
                "an insurance measure, and a cadre paired with the aided household if it has none (`cadre_id`, "
                "pairing rules apply; missing: `insurance.cadre_required`, 422). Paid already: 409. The fund "
                "short: `insurance.fund_insufficient` (409). " + STEP_ERRORS,
)
async def pay(claim_id: uuid.UUID, body: ClaimStepIn, session: SessionDep,
              principal: Principal = Authorized(Perm.insurance_claim_pay)) -> ClaimRead:
    claim = await insurance.pay(session, principal=principal, claim_id=claim_id, on=body.on, opinion=body.opinion,
                                cadre_id=body.cadre_id)
    return ClaimRead.model_validate(claim)
