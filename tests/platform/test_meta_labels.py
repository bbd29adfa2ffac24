"""`/meta/labels` (issue 14): every coded value the API sends or takes has one Chinese label."""

from __future__ import annotations

import re

from fupin.auth.roles import Role
from fupin.settings import Settings
from fupin_api.main import create_app
from fupin_api.routes.meta import GROUPS, LABELS, _codes
from tests.factories import new_county, token_for

CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"^[A-Za-z0-9_]+$")
# Enums in the document that are request options rather than data a screen shows: sort keys and file formats.
NOT_LABELLED = {"created_at", "-created_at", "head_name", "-head_name", "household_no", "-household_no",
                "income_per_capita", "-income_per_capita", "submitted_on", "preference", "amount",
                "json", "xlsx", "csv"}


def _enums(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        values = node.get("enum")
        if isinstance(values, list):
            out |= {v for v in values if isinstance(v, str)}
        for v in node.values():
            _enums(v, out)
    elif isinstance(node, list):
        for v in node:
            _enums(v, out)
    return out


def test_every_group_labels_exactly_its_codes_in_chinese():
    for name, (source, zh) in GROUPS.items():
        codes = _codes(source)
        assert set(zh) == set(codes), (name, set(zh) ^ set(codes))
        for code, label in LABELS.groups[name].items():
            assert CJK.search(label), (name, code, label)
            assert not re.search(r"[A-Za-z]", label), (name, code, label)


def test_every_coded_value_in_the_openapi_document_has_a_label():
    spec = create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x")).openapi()
    coded = {v for v in _enums(spec, set()) if CODE.match(v.lstrip("-"))} - NOT_LABELLED
    labelled = {code for group in LABELS.groups.values() for code in group}
    assert coded - labelled == set()


async def test_served_to_any_signed_in_user(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.cadre,
                          area_code=county.villages[county.townships[0]][0])
    r = await client.get("/meta/labels", headers=hdr)
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    assert groups["household_status"]["returned_to_poverty"] == "返贫"
    assert groups["poverty_cause"]["illness"] == "因病"
    assert groups["role"]["township_station"] == "乡镇扶贫工作站"
    assert (await client.get("/meta/labels")).status_code == 401
