"""Builders for household tests: valid resident ID numbers and household bodies."""

from __future__ import annotations

import io
import itertools
import random
from datetime import date
from typing import Any

from openpyxl import Workbook

from fupin.households.importer import HEADERS
from fupin.households.rules import check_digit

_seq = itertools.count(random.randint(0, 500) * 1000)


def id_number(*, born: date = date(1980, 5, 17), sex: str = "M", region: str = "520201") -> str:
    """A valid, never-repeating 18-digit ID number (sequence varies the region's last digits and serial)."""
    n = next(_seq)
    serial = (n % 500) * 2 + (1 if sex == "M" else 0)
    reg = region[:3] + f"{(int(region[3:]) + n // 500) % 1000:03d}"
    if reg[:2] == "00":
        reg = "52" + reg[2:]
    first17 = reg + born.strftime("%Y%m%d") + f"{serial:03d}"
    return first17 + check_digit(first17)


def member(relation: str = "户主", *, name: str = "张三", labour: str = "ordinary", **kw: Any) -> dict[str, Any]:
    return {"name": name, "id_number": kw.pop("id_number", None) or id_number(**{
        k: kw.pop(k) for k in ("born", "sex") if k in kw}), "relation": relation, "labour": labour, **kw}


_nos = itertools.count(1)


def household_body(village: str, *, members: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "area_code": village,
        "household_no": f"H{next(_nos):05d}",
        "head_name": "张三",
        "address": "一组",
        "category": "general",
        "main_cause": "illness",
        "secondary_causes": ["lack_capital"],
        "income_per_capita": "2800.50",
        "applied_on": "2026-01-05",
        "members": members or [member(), member("配偶", name="李四", sex="F", born=date(1982, 3, 1))],
    }
    body.update(kw)
    return body


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def row(no: object, village: str, name: str, number: str, relation: str = "户主", **kw: Any) -> list[Any]:
    """One roster row (the import's columns, in order), a plausible member with `kw` overriding columns."""
    base = {
        "户编号": no, "村代码": village, "地址": "一组", "贫困户属性": "一般贫困户", "主要致贫原因": "因病",
        "其他致贫原因": "缺资金、缺技术", "人均纯收入": "2800.50", "计生户": "否", "退役军人": "否", "识别年度": 2016,
        "姓名": name, "身份证号": number, "与户主关系": relation, "劳动能力": "普通劳动力", "完全民事行为能力": "是",
        "在校生": "否", "健康状况": "健康", "残疾情况": "",
    }
    base.update(kw)
    return [base[h] for h in HEADERS]


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def post_import(client: Any, headers: dict[str, str], rows: list[list[Any]]) -> Any:
    return await client.post("/households/import", headers={**headers, "content-type": XLSX}, content=xlsx(rows))
