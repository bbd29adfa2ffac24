"""`/meta/labels`: the Chinese label of every coded value the API sends or takes (issue 14).

Values stay codes (`returned_to_poverty`, `township_station`); a frontend shows `labels[group][code]`.
Each group's codes are read from the type that validates them wherever one exists, so a code added to a
type without a label fails `tests/platform/test_meta_labels.py`, as does an enum in the OpenAPI document
that no group covers.
"""

from __future__ import annotations

import typing
from enum import StrEnum
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from fupin.areas.codes import Level as AreaLevel
from fupin.assessment.rules import Band
from fupin.auth.permissions import Perm
from fupin.auth.principal import Principal
from fupin.auth.roles import ROLE_ZH, Role
from fupin.dividends.rules import HoldingStatus, OperatorKind, PoolModel
from fupin.households import rules as household_rules
from fupin.households.schemas import Status as HouseholdStatus
from fupin.jobs import JobStatus
from fupin.loans.schemas import Product, Purpose, StepName
from fupin.monitoring import rules as monitoring
from fupin.pairing.schemas import CadreStatus, MeasureStatus, UnitKind, VisitKind
from fupin.projects import schemas as projects
from fupin.schema import FupinSchema
from fupin.subsidies.schemas import Phase
from fupin_api.deps import Authorized
from fupin_api.problems import problem_responses

router = APIRouter(tags=["meta"])


def _codes(source: Any) -> tuple[str, ...]:
    if isinstance(source, type) and issubclass(source, StrEnum):
        return tuple(m.value for m in source)
    if typing.get_origin(source) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(source))
    return tuple(source)


# group: (where its codes come from, code → 中文). Groups without a type list their codes here.
GROUPS: dict[str, tuple[Any, dict[str, str]]] = {
    "role": (tuple(r.value for r in Role), {r.value: zh for r, zh in ROLE_ZH.items()}),
    "area_level": (AreaLevel, {"province": "省", "city": "市", "county": "县", "township": "乡镇", "village": "村"}),
    "sex": (("M", "F"), {"M": "男", "F": "女"}),
    "household_status": (HouseholdStatus, {
        "applied": "本人申请", "surveyed": "入户调查", "village_reviewed": "村级评议公示", "township_reviewed": "乡镇审核公示",
        "county_announced": "县级复审公告", "registered": "建档立卡", "rejected": "未通过识别", "exited": "已脱贫",
        "returned_to_poverty": "返贫", "removed": "已清退"}),
    "household_category": (tuple(household_rules.CATEGORIES), household_rules.CATEGORIES),
    "poverty_cause": (tuple(household_rules.CAUSES), household_rules.CAUSES),
    "labour": (tuple(household_rules.LABOUR), household_rules.LABOUR),
    "exit_check": (household_rules.EXIT_CHECKS, {
        "food": "不愁吃", "clothing": "不愁穿", "education": "义务教育有保障", "medical": "基本医疗有保障",
        "housing": "住房安全有保障"}),
    "loan_product": (Product, {"household": "扶贫到户贷款", "tehuidai": "特惠贷", "enterprise": "扶贫龙头企业贷款"}),
    "loan_purpose": (Purpose, {"tobacco": "烤烟", "sugar": "甘蔗", "mulberry": "蚕桑", "livestock": "畜牧养殖",
                               "vegetables": "蔬菜", "other_farming": "其他种养业", "non_productive": "非生产性用途"}),
    "loan_application_status": (("submitted", "village_reviewed", "station_reviewed", "coop_assessed",
                                 "county_reviewed", "approved", "rejected", "disbursed", "repaid", "overdue"), {
        "submitted": "已提交申请", "village_reviewed": "村委会已初审", "station_reviewed": "乡镇扶贫工作站已审查推荐",
        "coop_assessed": "信用社已完成资信调查", "county_reviewed": "县扶贫办已审查", "approved": "贷款已批准",
        "rejected": "贷款申请未获批准", "disbursed": "贷款已发放", "repaid": "贷款已还清", "overdue": "贷款已逾期"}),
    "loan_step": (StepName, {
        "village_review": "村委会初审", "village_reject": "村委会不予推荐", "station_recommend": "乡镇扶贫工作站审查推荐",
        "station_reject": "乡镇扶贫工作站不予推荐", "coop_assess": "信用社资信调查", "poverty_office_approve": "县扶贫办审批",
        "credit_union_approve": "县信用联社审批", "poverty_office_review": "县扶贫办审查", "approve": "批准贷款",
        "reject": "不予批准"}),
    "loan_status": (("current", "repaid_on_time", "repaid_late", "overdue"), {
        "current": "正常", "repaid_on_time": "按期还清", "repaid_late": "逾期后还清", "overdue": "逾期"}),
    "loan_certificate_status": (("village_reviewed", "issued"), {"village_reviewed": "村委会已评议", "issued": "已发证"}),
    "credit_rating": (("excellent", "good", "fair"), {"excellent": "优秀", "good": "良好", "fair": "一般"}),
    "bank_event_kind": (("disbursement", "repayment", "reversal"), {
        "disbursement": "放款", "repayment": "还款", "reversal": "冲正"}),
    "bank_event_status": (("applied", "parked", "duplicate", "conflict", "refused"), {
        "applied": "已入账", "parked": "暂存待放款", "duplicate": "重复报送", "conflict": "编号冲突", "refused": "已拒绝"}),
    "subsidy_phase": (Phase, {"allocation": "资金拨付", "preallocation": "预拨", "settlement": "结算"}),
    "report_version": (("station", "coop"), {"station": "乡镇扶贫工作站版", "coop": "信用社版"}),
    "job_status": (JobStatus, {"pending": "排队中", "running": "执行中", "done": "已完成", "failed": "失败待重试",
                               "dead": "失败待人工处理", "waiting": "等待前置任务"}),
    "repayment_band": (Band, {"reward": "奖励", "standard": "维持", "penalty": "扣减", "no_loans_due": "无到期贷款"}),
    "dividend_model": (PoolModel, {"rate": "按比例分红", "fixed": "固定分红"}),
    "dividend_operator_kind": (OperatorKind, {"company": "企业", "cooperative": "合作社"}),
    "dividend_holding_status": (HoldingStatus, {"active": "有效", "matured": "已到期", "renewed": "已续约",
                                                "redeemed": "已赎回", "redeemed_in_kind": "已实物返还"}),
    "project_status": (projects.ProjectStatus, {
        "proposed": "申报", "in_library": "入库", "approved": "立项", "tendering": "招投标", "in_progress": "实施中",
        "completed": "已完工", "accepted": "已验收", "closed": "已结项", "suspended": "暂停", "cancelled": "已取消"}),
    "project_fund_source": (projects.Source, {"central": "中央财政", "provincial": "省级财政", "municipal": "市级财政",
                                              "county": "县级财政", "other": "其他"}),
    "project_benefit_kind": (projects.BenefitKind, {"cash": "现金收益", "jobs": "就业", "dividends": "分红",
                                                    "infrastructure": "基础设施受益"}),
    "project_notice_stage": (projects.NoticeStage, {"pre_approval": "立项前公示", "post_acceptance": "验收后公示"}),
    "project_fund_movement": (projects.Movement, {"allocation": "拨付", "disbursement": "支付"}),
    "project_payee_kind": (projects.PayeeKind, {"implementer": "实施单位", "bidder": "中标单位"}),
    "project_report_group": (("project_source", "project", "source", "township", "year"), {
        "project_source": "按项目和资金来源", "project": "按项目", "source": "按资金来源", "township": "按乡镇", "year": "按年度"}),
    "helping_unit_kind": (UnitKind, {"bureau": "机关单位", "school": "学校", "enterprise": "企业", "other": "其他"}),
    "cadre_status": (CadreStatus, {"active": "在岗", "retired": "退休", "transferred": "调离"}),
    "visit_kind": (VisitKind, {"routine": "日常走访", "condolence": "慰问", "survey": "调查"}),
    "visit_period": (("month", "quarter"), {"month": "每月", "quarter": "每季度"}),
    "help_measure_status": (MeasureStatus, {"planned": "计划", "in_progress": "实施中", "done": "已完成",
                                            "cancelled": "已取消"}),
    "plan_gap": (("no_plan", "no_measure", "overdue_measure"), {
        "no_plan": "未制定帮扶计划", "no_measure": "无帮扶措施", "overdue_measure": "措施逾期"}),
    "monitoring_kind": (monitoring.MonitoringKind, {"unstable_exited": "脱贫不稳定户", "marginal": "边缘易致贫户",
                                                    "sudden_hardship": "突发严重困难户"}),
    "risk_cause": (monitoring.RiskCause, {
        "illness": "因病", "accident": "因意外事故", "disaster": "因灾", "disability": "因残", "schooling": "因学",
        "unemployment": "因失业", "income_drop": "收入骤减", "housing": "住房安全", "water": "饮水安全", "other": "其他"}),
    "warning_source": (monitoring.WarningSource, {"self_report": "农户自主申报", "cadre_visit": "干部走访排查",
                                                  "screening": "部门筛查预警"}),
    "screening_source": (monitoring.ScreeningSource, {
        "medical": "医保部门", "civil_affairs": "民政部门", "disability": "残联", "housing": "住建部门", "water": "水利部门",
        "disaster": "应急管理部门"}),
    "screening_outcome": (monitoring.RowOutcome, {"warning": "生成预警", "attached": "并入已有预警",
                                                  "below_threshold": "未达预警标准", "in_registry": "已在监测中",
                                                  "unmatched": "未匹配到农户"}),
    "monitoring_status": (monitoring.MonitoringStatus, {
        "warned": "已预警", "verified": "已入户核实", "village_reviewed": "村级已评议", "township_checked": "乡镇已审核",
        "monitored": "纳入监测", "dismissed": "不予纳入", "elimination_proposed": "已申请风险消除",
        "elimination_checked": "乡镇已审核风险消除", "eliminated": "风险已消除"}),
    "monitoring_step": (monitoring.Step, {
        "verify": "入户核实", "village_review": "村级评议", "township_check": "乡镇审核", "township_return": "乡镇退回",
        "decide_monitor": "县级确认纳入监测", "decide_dismiss": "县级确认不予纳入", "propose_elimination": "申请风险消除",
        "township_confirm_elimination": "乡镇审核风险消除", "township_reject_elimination": "乡镇退回风险消除",
        "decide_elimination": "县级确认风险消除", "reject_elimination": "县级不予消除"}),
    "monitoring_measure_kind": (monitoring.MeasureKind, {
        "industry": "产业帮扶", "employment": "就业帮扶", "medical_aid": "医疗救助", "dibao": "低保兜底", "education": "教育资助",
        "housing": "住房保障", "water": "饮水保障", "insurance": "防贫保险", "other": "其他"}),
    "monitoring_measure_status": (monitoring.MeasureStatus, {"planned": "计划", "in_progress": "实施中",
                                                             "done": "已完成"}),
    "monitoring_overdue": (("decision", "measures"), {"decision": "认定逾期", "measures": "措施逾期"}),
    "monitoring_rules_source": (("county", "default"), {"county": "本县标准", "default": "默认标准"}),
    "insurance_claim_status": (monitoring.ClaimStatus, {"submitted": "已申请", "assessed": "已核定", "approved": "已批准",
                                                        "paid": "已赔付", "rejected": "不予赔付"}),
    "document_target": (("household", "member", "visit", "project_step", "notice", "monitoring_step", "unattached"), {
        "household": "农户", "member": "家庭成员", "visit": "走访记录", "project_step": "项目环节", "notice": "公示",
        "monitoring_step": "监测环节", "unattached": "未关联"}),
    "sync_item_type": (("visit", "measure", "evidence"), {"visit": "走访记录", "measure": "帮扶措施", "evidence": "佐证材料"}),
    "sync_item_status": (("created", "already_synced", "refused"), {"created": "已创建", "already_synced": "已同步过",
                                                                   "refused": "已拒绝"}),
}


class Labels(FupinSchema):
    groups: dict[str, dict[str, str]] = Field(
        description="Group → code → 中文 label. Codes are what the API sends and takes; show the label.",
        examples=[{"household_status": {"returned_to_poverty": "返贫"}, "role": {"township_station": "乡镇扶贫工作站"}}])


# A code without a label shows as itself (and fails the test) rather than stopping the app.
LABELS = Labels(groups={name: {code: zh.get(code, code) for code in _codes(source)}
                        for name, (source, zh) in GROUPS.items()})


@router.get("/meta/labels", summary="Chinese labels of every coded value (statuses, roles, causes …)",
            response_model=Labels, responses=problem_responses(403))
async def labels(principal: Principal = Authorized(Perm.self_read)) -> Labels:
    """Every signed-in user may read it (the same table for everyone); a frontend loads it once per session.
    The codes in each group are exactly the values the API accepts and returns for that field."""
    return LABELS
