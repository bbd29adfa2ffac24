"""Builders for household tests: valid resident ID numbers and household bodies."""

from __future__ import annotations

import itertools
import random
from datetime import date
from typing import Any

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
