from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    county_admin = "county_admin"
    poverty_office = "poverty_office"  # 县扶贫办
    finance_bureau = "finance_bureau"  # 县财政局
    credit_union = "credit_union"  # 县信用联社
    township_station = "township_station"  # 乡镇扶贫工作站
    township_finance = "township_finance"  # 乡镇财政所
    credit_coop = "credit_coop"  # 乡镇信用社
    village_committee = "village_committee"  # 村委会
    cadre = "cadre"  # 帮扶责任人
    auditor = "auditor"  # read-only
    bank = "bank"  # machine client of a bank / coop
    system = "system"  # the worker and CLI


ROLE_ZH = {
    Role.county_admin: "县级管理员", Role.poverty_office: "县扶贫办", Role.finance_bureau: "县财政局",
    Role.credit_union: "县信用联社", Role.township_station: "乡镇扶贫工作站", Role.township_finance: "乡镇财政所",
    Role.credit_coop: "乡镇信用社", Role.village_committee: "村委会", Role.cadre: "帮扶责任人", Role.auditor: "审计人员",
    Role.bank: "银行接口", Role.system: "系统",
}
