"""Which role may do what: one explicit table, deny by default. Routes name a permission; tests
check every route names one and that each cell of this table is what the regulation assigns."""

from __future__ import annotations

from enum import StrEnum

from fupin.auth.roles import ROLE_ZH, Role
from fupin.errors import Forbidden

R = Role
STAFF = frozenset(r for r in Role if r not in (Role.bank, Role.system))
READERS = STAFF  # every staff role, auditor included, may read within its own area


class Perm(StrEnum):
    area_read = "area.read"
    area_write = "area.write"
    self_read = "self.read"  # GET /me: who am I, what may I do
    user_read = "user.read"
    user_write = "user.write"
    audit_read = "audit.read"
    access_denial_read = "access_denial.read"
    job_read = "job.read"
    job_trigger = "job.trigger"
    # households (建档立卡)
    household_read = "household.read"
    household_write = "household.write"
    household_transition = "household.transition"
    household_import = "household.import"
    household_export = "household.export"
    household_stats = "household.stats"
    # loans
    loan_config_read = "loan.config.read"
    loan_config_write = "loan.config.write"
    loan_quota_write = "loan.quota.write"
    loan_holiday_write = "loan.holiday.write"
    loan_certificate_review = "loan.certificate.review"
    loan_certificate_issue = "loan.certificate.issue"
    loan_read = "loan.read"
    loan_apply = "loan.apply"
    loan_step = "loan.step"
    loan_event_post = "loan.event.post"
    loan_report_read = "loan.report.read"
    bank_client_write = "bank.client.write"
    # end loans
    # assessment
    repayment_check_read = "repayment_check.read"
    repayment_check_trigger = "repayment_check.trigger"
    repayment_policy_read = "repayment_policy.read"
    repayment_policy_write = "repayment_policy.write"
    quota_proposal_read = "quota_proposal.read"
    quota_proposal_confirm = "quota_proposal.confirm"
    repayment_report_read = "repayment_report.read"
    # end assessment
    # dividends
    dividend_read = "dividend.read"
    dividend_write = "dividend.write"  # pools, holdings, renewal and redemption
    dividend_pay = "dividend.pay"  # request a dividend run (money moves)
    # pairing
    pairing_read = "pairing.read"
    pairing_write = "pairing.write"
    pairing_visit_write = "pairing.visit_write"
    pairing_plan_write = "pairing.plan_write"
    pairing_report = "pairing.report"
    # projects
    project_read = "project.read"
    project_write = "project.write"
    project_transition = "project.transition"
    project_fund = "project.fund"
    project_setting = "project.setting"
    # end projects
    # subsidies and ledger (issue 4)
    ledger_read = "ledger.read"
    ledger_check = "ledger.check"
    subsidy_read = "subsidy.read"
    subsidy_policy_write = "subsidy.policy_write"
    subsidy_run_request = "subsidy.run_request"
    # monitoring (防返贫, issue 17)
    monitoring_policy_read = "monitoring.policy_read"
    monitoring_policy_write = "monitoring.policy_write"
    monitoring_read = "monitoring.read"  # cadres additionally see only the households they are responsible for
    monitoring_warn = "monitoring.warn"
    monitoring_enter = "monitoring.enter"
    monitoring_cadre_assign = "monitoring.cadre_assign"
    monitoring_step = "monitoring.step"  # each step is further owned by one role (fupin.monitoring.rules)
    monitoring_measure_write = "monitoring.measure_write"
    monitoring_screening_read = "monitoring.screening_read"
    monitoring_screening_upload = "monitoring.screening_upload"
    monitoring_report = "monitoring.report"
    insurance_read = "insurance.read"
    insurance_policy_write = "insurance.policy_write"
    insurance_premium_post = "insurance.premium_post"
    insurance_claim_submit = "insurance.claim_submit"
    insurance_claim_assess = "insurance.claim_assess"
    insurance_claim_approve = "insurance.claim_approve"
    insurance_claim_reject = "insurance.claim_reject"  # the assessor before approval, the approver at it
    insurance_claim_pay = "insurance.claim_pay"
    # documents and the household archive (一户一档, issue 20)
    document_read = "document.read"
    document_upload = "document.upload"
    archive_setting = "archive.setting"  # the county's required list, village locations
    archive_report = "archive.report"


PERMISSIONS: dict[Perm, frozenset[Role]] = {
    Perm.area_read: READERS,
    Perm.area_write: frozenset({R.county_admin}),
    Perm.self_read: STAFF,
    Perm.user_read: frozenset({R.county_admin, R.auditor}),
    Perm.user_write: frozenset({R.county_admin}),
    Perm.audit_read: frozenset({R.county_admin, R.auditor, R.poverty_office}),
    # who was refused what: for the auditors and the administrators who answer for the area's accounts
    Perm.access_denial_read: frozenset({R.county_admin, R.auditor}),
    Perm.job_read: READERS,
    Perm.job_trigger: frozenset({R.county_admin}),
    # households (建档立卡): each workflow step is further owned by one role (fupin.households.rules)
    Perm.household_read: READERS,
    Perm.household_write: frozenset({R.village_committee, R.township_station, R.poverty_office}),
    Perm.household_transition: frozenset({R.village_committee, R.township_station, R.poverty_office}),
    Perm.household_import: frozenset({R.poverty_office}),
    Perm.household_export: READERS,
    Perm.household_stats: READERS,
    # loans
    Perm.loan_config_read: READERS,
    Perm.loan_config_write: frozenset({R.county_admin, R.poverty_office}),
    Perm.loan_quota_write: frozenset({R.county_admin, R.poverty_office}),
    Perm.loan_holiday_write: frozenset({R.county_admin}),
    Perm.loan_certificate_review: frozenset({R.village_committee}),
    Perm.loan_certificate_issue: frozenset({R.credit_coop}),
    Perm.loan_read: READERS,
    Perm.loan_apply: frozenset({R.village_committee, R.township_station, R.poverty_office, R.county_admin}),
    Perm.loan_step: frozenset({R.village_committee, R.township_station, R.credit_coop, R.poverty_office,
                               R.credit_union}),
    Perm.loan_event_post: frozenset({R.bank}),
    Perm.loan_report_read: READERS,
    Perm.bank_client_write: frozenset({R.county_admin, R.credit_union}),
    # end loans
    # assessment
    Perm.repayment_check_read: READERS,
    Perm.repayment_check_trigger: frozenset({R.poverty_office}),
    Perm.repayment_policy_read: READERS,
    Perm.repayment_policy_write: frozenset({R.poverty_office}),
    Perm.quota_proposal_read: READERS,
    Perm.quota_proposal_confirm: frozenset({R.poverty_office}),
    Perm.repayment_report_read: READERS,
    # end assessment
    # dividends
    Perm.dividend_read: READERS,
    Perm.dividend_write: frozenset({R.county_admin, R.poverty_office, R.township_station}),
    Perm.dividend_pay: frozenset({R.poverty_office, R.finance_bureau, R.township_finance}),
    # pairing
    Perm.pairing_read: READERS,  # cadres additionally see only their own paired households
    Perm.pairing_write: frozenset({R.county_admin, R.poverty_office}),
    Perm.pairing_visit_write: frozenset({R.county_admin, R.poverty_office, R.township_station, R.cadre}),
    Perm.pairing_plan_write: frozenset({R.county_admin, R.poverty_office, R.township_station, R.cadre}),
    Perm.pairing_report: READERS - {R.cadre},
    # projects
    Perm.project_read: READERS,
    Perm.project_write: frozenset({R.county_admin, R.poverty_office, R.township_station}),
    Perm.project_transition: frozenset({R.county_admin, R.poverty_office, R.township_station}),
    Perm.project_fund: frozenset({R.county_admin, R.finance_bureau, R.township_finance}),
    Perm.project_setting: frozenset({R.county_admin, R.poverty_office}),
    # end projects
    # subsidies and ledger (issue 4)
    Perm.ledger_read: frozenset({R.finance_bureau, R.township_finance, R.credit_coop, R.auditor, R.county_admin}),
    Perm.ledger_check: frozenset({R.finance_bureau, R.auditor, R.county_admin}),
    Perm.subsidy_read: frozenset({R.finance_bureau, R.township_finance, R.credit_coop, R.auditor, R.county_admin}),
    Perm.subsidy_policy_write: frozenset({R.finance_bureau}),
    Perm.subsidy_run_request: frozenset({R.finance_bureau, R.township_finance}),
    # monitoring (防返贫, issue 17): the village verifies and proposes, the station checks, the poverty
    # office decides; a cadre reports what a visit found and records measures for their own households.
    Perm.monitoring_policy_read: READERS,
    Perm.monitoring_policy_write: frozenset({R.poverty_office}),
    Perm.monitoring_read: READERS,
    Perm.monitoring_warn: frozenset({R.village_committee, R.cadre, R.township_station, R.poverty_office}),
    Perm.monitoring_enter: frozenset({R.village_committee, R.township_station, R.poverty_office}),
    Perm.monitoring_cadre_assign: frozenset({R.township_station, R.poverty_office}),
    Perm.monitoring_step: frozenset({R.village_committee, R.township_station, R.poverty_office}),
    Perm.monitoring_measure_write: frozenset({R.village_committee, R.township_station, R.poverty_office, R.cadre}),
    Perm.monitoring_screening_read: frozenset({R.poverty_office, R.township_station, R.village_committee,
                                               R.county_admin, R.auditor}),
    Perm.monitoring_screening_upload: frozenset({R.poverty_office}),
    Perm.monitoring_report: READERS - {R.cadre},
    Perm.insurance_read: READERS,
    Perm.insurance_policy_write: frozenset({R.poverty_office}),
    Perm.insurance_premium_post: frozenset({R.finance_bureau}),
    Perm.insurance_claim_submit: frozenset({R.village_committee, R.township_station}),
    Perm.insurance_claim_assess: frozenset({R.poverty_office}),
    Perm.insurance_claim_approve: frozenset({R.finance_bureau}),
    Perm.insurance_claim_reject: frozenset({R.poverty_office, R.finance_bureau}),
    Perm.insurance_claim_pay: frozenset({R.finance_bureau}),
    # documents: ID-bearing kinds are further limited to the roles that see full ID numbers
    # (fupin.documents.rules.may_read_kind)
    Perm.document_read: READERS,
    Perm.document_upload: frozenset({R.cadre, R.village_committee, R.township_station, R.poverty_office,
                                     R.county_admin}),
    Perm.archive_setting: frozenset({R.poverty_office, R.county_admin}),
    Perm.archive_report: frozenset({R.township_station, R.poverty_office, R.county_admin, R.auditor}),
}


def allowed(role: Role, perm: Perm) -> bool:
    return role is Role.system or role in PERMISSIONS.get(perm, frozenset())


def require(role: Role, perm: Perm) -> None:
    if not allowed(role, perm):
        raise Forbidden(
            "auth.forbidden",
            f"role {role} may not {perm}",
            f"当前角色({ROLE_ZH.get(role, '未知角色')})无权执行此操作(权限 {perm})",
        )
