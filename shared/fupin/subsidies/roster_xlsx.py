"""花名册 as .xlsx bytes (openpyxl, in memory)."""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook

from fupin.subsidies.schemas import Roster

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADERS = ["户主/企业", "身份证号", "村", "信用社", "贷款编号", "本金", "天数", "年贴息率", "贴息金额", "兑付日期"]


def to_xlsx(roster: Roster) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"贴息花名册 {roster.quarter}"
    ws.append(HEADERS)
    for r in roster.rows:
        ws.append([
            r.head_name or r.enterprise_name or "", r.id_number_masked or "", r.area_code, r.coop_code,
            str(r.loan_id), r.principal, r.days, r.rate, r.amount, r.paid_on,
        ])
        for cell in ws[ws.max_row][5:6] + ws[ws.max_row][8:9]:
            cell.number_format = "0.00"
    ws.append(["合计", "", "", "", "", None, None, None, roster.total, None])
    out = BytesIO()
    wb.save(out)
    return out.getvalue()
