"""Pure household rules: resident ID numbers (GB 11643-1999), masking, codes, and the workflow table."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.errors import RuleViolation

# --- codes -------------------------------------------------------------------------------------

CATEGORIES: dict[str, str] = {"general": "一般贫困户", "dibao": "低保贫困户", "tekun": "特困供养贫困户"}
CAUSES: dict[str, str] = {
    "illness": "因病", "disability": "因残", "schooling": "因学", "disaster": "因灾", "lack_land": "缺土地",
    "lack_water": "缺水", "lack_skills": "缺技术", "lack_labour": "缺劳力", "lack_capital": "缺资金",
    "transport": "交通条件落后", "lack_motivation": "自身发展动力不足",
}
LABOUR: dict[str, str] = {
    "ordinary": "普通劳动力", "skilled": "技能劳动力", "weak": "弱劳动力或半劳动力", "lost": "丧失劳动力", "none": "无劳动力",
}
RELATIONS = ("户主", "配偶", "子女", "父母", "孙辈", "兄弟姐妹", "其他")
HEAD = "户主"


def code_of(value: str, table: dict[str, str]) -> str | None:
    """Accept either the code or its Chinese label (台账 use the labels)."""
    v = value.strip()
    if v in table:
        return v
    for code, label in table.items():
        if v == label:
            return code
    return None


# --- ID numbers --------------------------------------------------------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ASCII_DIGITS15 = re.compile(r"^[0-9]{15}$")


def check_digit(first17: str) -> str:
    if len(first17) != len(_WEIGHTS):
        raise ValueError("17 digits expected")
    # map/operator rather than a generator: department files run to half a million ID numbers.
    return _CHECK[sum(map(operator.mul, map(int, first17), _WEIGHTS)) % 11]


@dataclass(frozen=True)
class IdInfo:
    number: str  # normalised: uppercase X
    sex: str  # M | F
    birth_date: date


def _bad(code: str, en: str, zh: str, number: str) -> RuleViolation:
    return RuleViolation(code, en, zh, extra={"id_number": mask_id(number) if len(number) == 18 else "***"})


def parse_id(raw: str, *, today: date | None = None) -> IdInfo:
    """Validate an 18-digit resident ID number and derive sex and birth date from it.

    Only ASCII digits are accepted (no full-width digits, no inner spaces); a lowercase x check
    character is normalised to X. 15-digit numbers from before 1999 are refused: they carry no check digit.
    """
    number = raw.strip() if isinstance(raw, str) else ""
    if _ASCII_DIGITS15.match(number):
        raise RuleViolation(
            "member.id_legacy_15", "15-digit legacy ID numbers are not accepted; give the 18-digit number",
            "不接受15位旧身份证号码,请填写18位号码",
        )
    if number.endswith("x"):
        number = number[:-1] + "X"
    if not _ID18.match(number):
        raise RuleViolation(
            "member.id_format", "ID number must be 17 ASCII digits and a digit or X", "身份证号码须为18位(末位可为X)"
        )
    if number[:6] == "000000" or number[:2] == "00":
        raise _bad("member.id_region", "ID number has no valid region code", "身份证号码地区码无效", number)
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise _bad("member.id_birth_date", "ID number carries an impossible birth date", "身份证号码出生日期无效", number) from None
    if born > (today or business_date()) or born.year < 1880:
        raise _bad("member.id_birth_date", "ID number carries a birth date in the future", "身份证号码出生日期无效", number)
    if check_digit(number[:17]) != number[17]:
        raise _bad("member.id_check_digit", "ID number check digit is wrong", "身份证号码校验位错误", number)
    return IdInfo(number=number, sex="M" if int(number[16]) % 2 else "F", birth_date=born)


def check_member_identity(raw: str, *, sex: str | None, birth_date: date | None, today: date | None = None) -> IdInfo:
    """Parse the ID number and refuse a given sex or birth date that contradicts it."""
    info = parse_id(raw, today=today)
    if (sex is not None and sex != info.sex) or (birth_date is not None and birth_date != info.birth_date):
        raise RuleViolation(
            "member.id_mismatch", "sex or birth date does not match the ID number", "性别或出生日期与身份证号码不符",
            extra={"id_number": mask_id(info.number)},
        )
    return info


# --- personal information ------------------------------------------------------------------------

FULL_ID_ROLES = frozenset({Role.credit_coop, Role.poverty_office})


def sees_full_id(role: Role) -> bool:
    return role in FULL_ID_ROLES


def mask_id(number: str) -> str:
    """`5202**********1234`: first 4, ten stars, last 4."""
    return number[:4] + "*" * 10 + number[-4:]


def shown_id(number: str, role: Role) -> str:
    """The one place that decides how an ID number is shown to a role."""
    return number if sees_full_id(role) else mask_id(number)


# --- workflow ----------------------------------------------------------------------------------

class HouseholdStatus(StrEnum):
    applied = "applied"
    surveyed = "surveyed"
    village_reviewed = "village_reviewed"
    township_reviewed = "township_reviewed"
    county_announced = "county_announced"
    registered = "registered"
    rejected = "rejected"
    exited = "exited"
    returned_to_poverty = "returned_to_poverty"
    removed = "removed"


H = HouseholdStatus
IDENTIFICATION = (H.applied, H.surveyed, H.village_reviewed, H.township_reviewed, H.county_announced, H.registered)
NOTICE_STEPS = frozenset({H.village_reviewed, H.township_reviewed})  # 两公示
STEP_ROLE: dict[str, Role] = {
    H.surveyed: Role.village_committee,
    H.village_reviewed: Role.village_committee,
    H.township_reviewed: Role.township_station,
    H.county_announced: Role.poverty_office,
    H.registered: Role.poverty_office,
    H.exited: Role.poverty_office,
    H.returned_to_poverty: Role.poverty_office,
    H.removed: Role.poverty_office,
}
# dynamic management (动态管理): allowed sources of each target
DYNAMIC_FROM: dict[str, frozenset[str]] = {
    H.exited: frozenset({H.registered, H.returned_to_poverty}),
    H.returned_to_poverty: frozenset({H.exited}),
    H.removed: frozenset({H.registered, H.exited, H.returned_to_poverty}),
}
CLOSED = frozenset({H.rejected, H.removed})
POOR = (H.registered, H.returned_to_poverty)  # registered and not exited
STATUSES = tuple(HouseholdStatus)
EXIT_CHECKS = ("food", "clothing", "education", "medical", "housing")  # 两不愁三保障


def step_owner(target: str, current: str) -> Role | None:
    """The role that may take `current` to `target`; rejection belongs to the owner of the next step."""
    if target == H.rejected:
        if current not in IDENTIFICATION[:-1]:
            return None
        return STEP_ROLE[IDENTIFICATION[IDENTIFICATION.index(current) + 1]]
    return STEP_ROLE.get(target)


# What a step's request must carry besides `to` and `on` (service.transition refuses it otherwise).
STEP_NEEDS: dict[str, tuple[str, ...]] = {
    "village_reviewed": ("notice_start", "notice_end"),
    "township_reviewed": ("notice_start", "notice_end"),
    "rejected": ("reason",),
    "removed": ("reason",),
    "returned_to_poverty": ("reason",),
    "exited": ("year", "confirmations"),
}
TARGETS = (*IDENTIFICATION[1:], "rejected", *DYNAMIC_FROM)


def allowed_steps(current: str, role: Role) -> list[str]:
    """The statuses `role` may take a household to from `current`, by the same order and ownership rules
    `service.transition` applies first (dates, notices and reasons are checked when the step is posted)."""
    out = []
    for target in TARGETS:
        try:
            check_transition(current, target)
        except RuleViolation:
            continue
        if step_owner(target, current) is role:
            out.append(target)
    return out


def check_transition(current: str, target: str) -> None:
    if current in CLOSED:
        raise RuleViolation("household.closed", f"the case is closed ({current})", "该户已结案", status=409)
    if target == H.rejected:
        if current not in IDENTIFICATION[:-1]:
            raise RuleViolation(
                "household.step_out_of_order", "only a case under identification can be rejected",
                "只有识别中的农户可以驳回", status=409,
            )
        return
    if target in IDENTIFICATION:
        i = IDENTIFICATION.index(target)
        if i == 0 or current != IDENTIFICATION[i - 1]:
            raise RuleViolation(
                "household.step_out_of_order", f"{target} must follow {IDENTIFICATION[max(i - 1, 0)]}, not {current}",
                "识别程序不能跳步", status=409, extra={"current": current, "target": target},
            )
        return
    if target in DYNAMIC_FROM:
        if current not in DYNAMIC_FROM[target]:
            raise RuleViolation(
                "household.step_out_of_order", f"cannot go from {current} to {target}", "状态变更不符合程序",
                status=409, extra={"current": current, "target": target},
            )
        return
    raise RuleViolation("household.unknown_status", f"unknown status {target}", "未知状态")
