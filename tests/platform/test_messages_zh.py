"""detail_zh reads as Chinese: entity and role names are translated; only codes stay in Latin letters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fupin.auth.permissions import Perm, require
from fupin.auth.roles import ROLE_ZH, Role
from fupin.errors import ENTITY_ZH, DomainError, not_found

ROOT = Path(__file__).resolve().parents[2]


def _used_entities() -> set[str]:
    found: set[str] = set()
    for path in [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]:
        found |= set(re.findall(r'not_found\("([a-z_]+)"\)', path.read_text(encoding="utf-8")))
    return found


def test_every_not_found_entity_has_a_chinese_name_and_no_latin_in_detail_zh():
    used = _used_entities()
    assert used, "the scan found no not_found() calls"
    assert used <= set(ENTITY_ZH), used - set(ENTITY_ZH)
    for entity in used:
        assert not re.search(r"[A-Za-z]", not_found(entity).message_zh), entity


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.county_admin, Role.system)])
def test_forbidden_names_the_role_in_chinese_and_keeps_only_the_code_latin(role):
    assert role in ROLE_ZH
    with pytest.raises(DomainError) as err:
        require(role, Perm.area_write)
    zh = err.value.message_zh
    assert ROLE_ZH[role] in zh
    assert not re.search(r"[A-Za-z]", zh.replace(Perm.area_write.value, "")), zh
