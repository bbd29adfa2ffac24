"""12-digit statistical division codes: 2 province · 2 city · 2 county · 3 township · 3 village.

Scope is by level width, never by stripping trailing zeros: township `…100` and village `…200` are
ordinary codes, and stripping would make `5201231` a prefix of both `520123100…` and `520123101…`.
"""

from __future__ import annotations

import re
from enum import StrEnum

from fupin.errors import RuleViolation

CODE_RE = re.compile(r"^\d{12}$")


class Level(StrEnum):
    province = "province"
    city = "city"
    county = "county"
    township = "township"
    village = "village"


WIDTH = {Level.province: 2, Level.city: 4, Level.county: 6, Level.township: 9, Level.village: 12}


def level_of(code: str) -> Level:
    if not CODE_RE.match(code) or code[:2] == "00":
        raise RuleViolation(
            "area.invalid_code",
            f"area code {code!r} must be 12 digits with a non-zero province",
            f"区划代码 {code!r} 必须是12位数字",
        )
    if code[9:] != "000":
        return Level.village
    if code[6:9] != "000":
        return Level.township
    if code[4:6] != "00":
        return Level.county
    if code[2:4] != "00":
        return Level.city
    return Level.province


def prefix_of(code: str) -> str:
    """The digits every code inside this area starts with."""
    return code[: WIDTH[level_of(code)]]


def parent_of(code: str) -> str | None:
    level = level_of(code)
    order = list(WIDTH)
    idx = order.index(level)
    if idx == 0:
        return None
    width = WIDTH[order[idx - 1]]
    return code[:width].ljust(12, "0")


def contains(scope_code: str, code: str) -> bool:
    return code.startswith(prefix_of(scope_code))


def county_of(code: str) -> str:
    return code[:6].ljust(12, "0")


def township_of(code: str) -> str:
    return code[:9].ljust(12, "0")
