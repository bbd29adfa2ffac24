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
    # projects
    project_read = "project.read"
    project_write = "project.write"
    project_transition = "project.transition"
    project_fund = "project.fund"
    project_setting = "project.setting"
    # end projects


PERMISSIONS: dict[Perm, frozenset[Role]] = {
    Perm.area_read: READERS,
    Perm.area_write: frozenset({R.county_admin}),
    Perm.user_read: frozenset({R.county_admin, R.auditor}),
    Perm.user_write: frozenset({R.county_admin}),
    Perm.audit_read: frozenset({R.county_admin, R.auditor, R.poverty_office}),
    Perm.job_read: READERS,
    Perm.job_trigger: frozenset({R.county_admin}),
    # projects
    Perm.project_read: READERS,
    Perm.project_write: frozenset({R.county_admin, R.poverty_office, R.township_station}),
    Perm.project_transition: frozenset({R.county_admin, R.poverty_office, R.township_station}),
    Perm.project_fund: frozenset({R.county_admin, R.finance_bureau, R.township_finance}),
    Perm.project_setting: frozenset({R.county_admin, R.poverty_office}),
    # end projects
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
