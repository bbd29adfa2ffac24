"""花名册 as .xlsx bytes (a write-only workbook, see fupin.xlsx)."""

from __future__ import annotations

from fupin import xlsx
from fupin.subsidies.schemas import Roster

XLSX = xlsx.XLSX
HEADERS = ["户主/企业", "身份证号", "村", "信用社", "贷款编号", "本金", "天数", "年贴息率", "贴息金额", "兑付日期"]


def to_xlsx(roster: Roster) -> bytes:
    wb, ws = xlsx.sheet(f"贴息花名册 {roster.quarter}")
    ws.append(HEADERS)
    for r in roster.rows:
        ws.append([
            r.head_name or r.enterprise_name or "", r.id_number_masked or "", r.area_code, r.coop_code,
            str(r.loan_id), xlsx.cell(ws, r.principal, number_format="0.00"), r.days, r.rate,
            xlsx.cell(ws, r.amount, number_format="0.00"), r.paid_on,
        ])
    ws.append(["合计", "", "", "", "", None, None, None, roster.total, None])
    return xlsx.to_bytes(wb)
