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
