"""Contract tests over the generated OpenAPI document (issue 14): a frontend developer can rely on it.
They walk every operation and every schema, so a route added later is held to the same rules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from fupin.money import MONEY_OUT_PATTERN, MONEY_PATTERN, SIGNED_MONEY_PATTERN
from fupin.settings import Settings
from fupin_api.main import create_app
from fupin_api.openapi import api_routes
from fupin_api.openapi_contract import NON_PROBLEM_ERRORS

PROBLEM_REF = "#/components/schemas/Problem"
MONEY_PATTERNS = {MONEY_PATTERN, SIGNED_MONEY_PATTERN, MONEY_OUT_PATTERN}
# Field names that carry yuan. Counts (`households`, `persons`…) are integers and are not matched.
MONEY_NAME = re.compile(
    r"(^|_)(amount|balance|total|principal|debit|credit|income|quota|premium|premiums|cover|cap|funds|budget|"
    r"paid|recovered|disbursed|outstanding|deductible|payable|cost|allocated|unpaid|used|remaining|expected|"
    r"returned|topped_up|threshold|income_line|per_person|out_of_pocket)(_|$)"
)
# Dates, people, identifiers and labels about money (`paid_on`, `paid_by`, `budget_source`).
NOT_AMOUNT_SUFFIX = re.compile(r"_(on|at|by|id|ids|name|kind|status|source|no|entry_id|account|code|note|rating)$")
# Decimal fields whose names look like money but are not yuan.
NOT_MONEY = {"reward_threshold", "penalty_threshold", "quota_increase", "quota_cut", "quota_change", "used_pct", "per_person_cap_rate"}


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x"))


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_operation_has_a_summary_a_description_and_who_may_call_it(spec):
    missing = [f"{m.upper()} {p}" for p, m, op in _operations(spec)
               if not op.get("summary") or not op.get("description") or "**Who may call:**" not in op["description"]]
    assert not missing, missing


def test_no_schema_name_exposes_a_module_path(spec):
    assert not [name for name in spec["components"]["schemas"] if "__" in name]


def test_every_error_response_is_a_problem_document(spec):
    wrong = []
    for path, method, op in _operations(spec):
        for status, resp in op["responses"].items():
            if not status.isdigit() or int(status) < 400 or (path, method, status) in NON_PROBLEM_ERRORS:
                continue
            content = resp.get("content", {})
            if list(content) != ["application/problem+json"] or content[
                    "application/problem+json"].get("schema", {}).get("$ref") != PROBLEM_REF:
                wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert not wrong, wrong
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_operations_with_a_body_document_the_400_and_the_422(spec):
    missing = [f"{m.upper()} {p}" for p, m, op in _operations(spec)
               if "requestBody" in op and not {"400", "422"} <= set(op["responses"])]
    assert not missing, missing


def test_every_tag_is_described_with_its_chinese_name(spec):
    described = {t["name"]: t["description"] for t in spec["tags"]}
    used = {tag for _, _, op in _operations(spec) for tag in op.get("tags", [])}
    assert used <= set(described), used - set(described)
    assert all(re.search(r"[\u4e00-\u9fff]", described[t]) for t in used)


def _properties(spec: dict[str, Any]):
    for model, schema in spec["components"]["schemas"].items():
        for name, prop in schema.get("properties", {}).items():
            yield model, name, prop


def _variants(prop: dict[str, Any]) -> list[dict[str, Any]]:
    found = [v for v in prop.get("anyOf", []) if v.get("type") != "null"] or [prop]
    return [v.get("items", v) if v.get("type") == "array" else v for v in found]


def test_money_is_a_string_with_a_money_pattern_and_no_number_anywhere(spec):
    numbers = [f"{m}.{n}" for m, n, p in _properties(spec) if any(v.get("type") == "number" for v in _variants(p))]
    assert not numbers, f"JSON numbers (floats) in the contract: {numbers}"
    wrong = []
    for model, name, prop in _properties(spec):
        if not MONEY_NAME.search(name) or name in NOT_MONEY or NOT_AMOUNT_SUFFIX.search(name):
            continue
        for v in _variants(prop):
            if v.get("type") in ("integer", "boolean", "object") or "$ref" in v or "enum" in v:
                continue
            if v.get("type") != "string" or v.get("pattern") not in MONEY_PATTERNS:
                wrong.append(f"{model}.{name}: {v}")
    assert not wrong, "\n".join(wrong)


def _body_routes(app) -> list[APIRoute]:
    return [r for r in api_routes(app) if r.include_in_schema and r.body_field is not None]


def test_every_json_request_body_has_an_example_the_server_accepts(app, spec):
    refused = []
    for route in _body_routes(app):
        for method in route.methods:
            op = spec["paths"][route.path][method.lower()]
            media = op["requestBody"]["content"].get("application/json")
            if media is None:
                continue
            example = media.get("example")
            assert example is not None, f"{method} {route.path}: no example"
            try:
                TypeAdapter(route.body_field.field_info.annotation).validate_json(json.dumps(example))
            except ValidationError as exc:
                refused.append(f"{method} {route.path}: {exc.errors()[:2]}")
    assert not refused, "\n".join(refused)


def test_main_json_responses_have_examples_with_two_place_money(spec):
    missing = []
    for path, method, op in _operations(spec):
        for status in ("200", "201", "202"):
            media = op["responses"].get(status, {}).get("content", {}).get("application/json")
            if media is not None and media.get("schema"):
                if "example" not in media:
                    missing.append(f"{method.upper()} {path} {status}")
                for key, value in _leaves(media.get("example")):
                    if MONEY_NAME.search(key) and key not in NOT_MONEY and isinstance(value, str) and \
                            re.fullmatch(r"-?\d+(\.\d+)?", value):
                        assert re.fullmatch(MONEY_OUT_PATTERN, value), (path, key, value)
    assert not missing, missing


def _leaves(value: Any, key: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value


def test_raw_uploads_document_their_body(spec):
    for path in ("/households/import", "/monitoring/screenings", "/bank/loan-event-files"):
        body = spec["paths"][path]["post"].get("requestBody")
        assert body is not None, path
        assert body["content"], path


def test_problem_document_is_under_problem_json_with_an_example(spec):
    resp = spec["paths"]["/loan-quotas"]["put"]["responses"]["422"]
    example = resp["content"]["application/problem+json"]["example"]
    assert example["errors"][0]["path"] == "body.amount"
    assert {"code", "detail", "detail_zh", "status", "title"} <= set(example)


# Lists that still page another way, each with its reason; the test keeps the list from growing silently.
PAGED_OTHERWISE = {
    "/jobs": "newest runs only; its scoping is being reworked (issue 18.1), cursor to follow",
    "/monitoring/screenings/{screening_id}/rows": "pages by `after_row` (the file's row number)",
}


def test_every_list_is_the_one_envelope_and_limits_come_with_a_cursor(spec):
    bare, no_cursor = [], []
    for path, method, op in _operations(spec):
        if method != "get":
            continue
        schema = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") == "array":
            bare.append(path)
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        if ref.startswith("Page_"):
            # `total` is optional and sent only when asked for (`?total=true` on the lists that offer it).
            assert set(spec["components"]["schemas"][ref]["properties"]) == {"items", "next_cursor", "total"}, path
            assert spec["components"]["schemas"][ref]["required"] == ["items"], path
            if "total" in params:
                assert "total=true" in op["description"], path
            assert "**Paging:**" in op["description"], path
            if "limit" in params:
                assert params["limit"]["schema"].get("maximum"), f"{path}: limit without a documented maximum"
                if "cursor" not in params and path not in PAGED_OTHERWISE:
                    no_cursor.append(path)
        assert "offset" not in params, f"{path} pages by offset"
    assert not bare, f"bare arrays instead of the envelope: {bare}"
    assert not no_cursor, f"a limit but no cursor (page 2 unreachable): {no_cursor}"
