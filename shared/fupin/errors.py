"""Domain errors carry a stable code, their intended HTTP status and a message in Chinese and English.

No HTTP imports here: the API renders these as RFC 9457 problem+json, the worker records them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 422
    code: str = "domain.error"

    def __init__(
        self,
        code: str | None = None,
        message_en: str = "",
        message_zh: str = "",
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.code = code or type(self).code
        self.message_en = message_en or self.code
        self.message_zh = message_zh or self.message_en
        if status is not None:
            self.status = status
        self.extra = extra or {}
        super().__init__(f"{self.code}: {self.message_en}")


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "auth.unauthorized"


class RuleViolation(DomainError):
    status = 422
    code = "rule.violation"


class Unavailable(DomainError):
    status = 503
    code = "service.unavailable"


# Chinese names for detail_zh, so it reads as Chinese throughout (the code keeps the English entity name).
ENTITY_ZH = {
    "area": "行政区划", "cadre": "帮扶责任人", "county": "县", "dividend_holding": "分红持股", "dividend_pool": "分红资金池",
    "dividend_run": "分红批次", "document": "档案材料", "help_measure": "帮扶措施", "help_plan": "帮扶计划", "helping_unit": "帮扶单位",
    "household": "贫困户", "household_member": "家庭成员", "insurance_claim": "保险理赔", "insurance_policy": "保险方案",
    "job": "后台任务", "journal_entry": "记账凭证", "ledger_account": "资金账户", "loan": "贷款",
    "loan_application": "贷款申请", "loan_certificate": "贷款证", "member": "家庭成员", "monitored_household": "监测户",
    "monitoring_measure": "监测帮扶措施", "monitoring_step": "监测处置环节", "pairing": "结对关系", "person": "人员", "project": "项目",
    "quota_proposal": "额度调整建议", "repayment_check": "还款率考核", "screening": "筛查文件", "subsidy_run": "贴息批次",
    "thumbnail": "缩略图", "township": "乡镇", "user": "用户", "village_assignment": "驻村安排", "visit": "走访记录", "work_team": "工作队",
}


def not_found(entity: str) -> NotFound:
    return NotFound(f"{entity}.not_found", f"{entity} not found", f"未找到该{ENTITY_ZH.get(entity, '对象')}")
