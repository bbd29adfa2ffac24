"""Which role may do what: one explicit table, deny by default. Routes name a permission; tests
check every route names one and that each cell of this table is what the regulation assigns."""

from __future__ import annotations

from enum import StrEnum

from fupin.auth.roles import Role
from fupin.errors import Forbidden

R = Role
STAFF = frozenset(r for r in Role if r not in (Role.bank, Role.system))
READERS = STAFF  # every staff role, auditor included, may read within its own area


class Perm(StrEnum):
    area_read = "area.read"
    area_write = "area.write"
    user_read = "user.read"
    user_write = "user.write"
    audit_read = "audit.read"
    job_read = "job.read"
    job_trigger = "job.trigger"
    # subsidies and ledger (issue 4)
    ledger_read = "ledger.read"
    ledger_check = "ledger.check"
    subsidy_read = "subsidy.read"
    subsidy_policy_write = "subsidy.policy_write"
    subsidy_run_request = "subsidy.run_request"


PERMISSIONS: dict[Perm, frozenset[Role]] = {
    Perm.area_read: READERS,
    Perm.area_write: frozenset({R.county_admin}),
    Perm.user_read: frozenset({R.county_admin, R.auditor}),
    Perm.user_write: frozenset({R.county_admin}),
    Perm.audit_read: frozenset({R.county_admin, R.auditor, R.poverty_office}),
    Perm.job_read: READERS,
    Perm.job_trigger: frozenset({R.county_admin}),
    # subsidies and ledger (issue 4)
    Perm.ledger_read: frozenset({R.finance_bureau, R.township_finance, R.credit_coop, R.auditor, R.county_admin}),
    Perm.ledger_check: frozenset({R.finance_bureau, R.auditor, R.county_admin}),
    Perm.subsidy_read: frozenset({R.finance_bureau, R.township_finance, R.credit_coop, R.auditor, R.county_admin}),
    Perm.subsidy_policy_write: frozenset({R.finance_bureau}),
    Perm.subsidy_run_request: frozenset({R.finance_bureau, R.township_finance}),
}


def allowed(role: Role, perm: Perm) -> bool:
    return role is Role.system or role in PERMISSIONS.get(perm, frozenset())


def require(role: Role, perm: Perm) -> None:
    if not allowed(role, perm):
        raise Forbidden(
            "auth.forbidden",
            f"role {role} may not {perm}",
            f"角色 {role} 无权执行 {perm}",
        )
