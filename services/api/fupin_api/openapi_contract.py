"""The OpenAPI document a frontend developer can work from without reading our source (issue 14).

Applied to the whole app rather than route by route, so routes added later are covered too:
- every operation's description says who may call it (from the permission table the route's guard names)
  and which errors it answers, after whatever the route itself says;
- every error response is `application/problem+json` with the `Problem` schema, and operations taking a
  body document the 400 a malformed body gets;
- tags carry descriptions with their Chinese names;
- request bodies and the main JSON responses carry an example: the schema's own examples where a model
  or field gives them, otherwise one built from the schema (money "30000.00", dates "2026-06-01", area
  codes, first enum value). `tests/platform/test_openapi_contract.py` validates every request example
  against its route's model, so an example that the server would refuse fails the build.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from fupin.auth.permissions import PERMISSIONS, Perm
from fupin.auth.roles import Role
from fupin.schema import Page
from fupin_api.deps import Authorize, Read
from fupin_api.openapi import api_routes
from fupin_api.problems import PROBLEM, TITLES

TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "健康检查 — Liveness, readiness and Prometheus metrics; no login."},
    {"name": "auth", "description": "登录与令牌 — Sign in with a user name and password (OAuth2 password form) "
                                    "and receive a short-lived bearer token for the `Authorization` header and a "
                                    "one-time refresh token to renew it (`/auth/refresh`) until `/auth/logout`."},
    {"name": "areas", "description": "行政区划 — The area tree (county 县, township 乡镇, village 村) by 12-digit "
                                     "code. Every user is scoped to one area and sees only what lies inside it."},
    {"name": "meta", "description": "代码标签 — The Chinese label of every coded value (statuses, roles, causes …) "
                                    "for frontends: the API sends and takes codes, screens show the labels."},
    {"name": "users", "description": "用户 — Staff accounts, their role and area."},
    {"name": "audit", "description": "审计日志 — The tamper-evident audit trail of every change, sealed in a "
                                     "hash chain."},
    {"name": "jobs", "description": "后台任务 — Background runs (subsidy settlements, dividend runs, repayment "
                                    "checks): their status and results."},
    {"name": "households", "description": "建档立卡 — The registry of poor households and their members: "
                                          "registration, updates, status transitions (identification, exit, "
                                          "return), Excel import and export, statistics."},
    {"name": "loans", "description": "扶贫小额信贷 / 特惠贷 — Special-preference loans: product rules, township "
                                     "readiness, annual quotas, certificates, applications through every review "
                                     "step, loans, notices and reports."},
    {"name": "bank", "description": "银行接口 — Machine clients of banks and credit cooperatives post "
                                    "disbursements and repayments, signed with HMAC-SHA256; secrets are issued "
                                    "and rotated by the county."},
    {"name": "assessment", "description": "还款率考核 — Repayment-rate checks per township against the county's "
                                          "policy, rewards and penalties on next year's quota, early warnings."},
    {"name": "subsidies", "description": "贴息 — Interest-subsidy runs: allocation, pre-allocation and settlement "
                                         "per township, with rosters."},
    {"name": "dividends", "description": "资产收益分红 — Dividend pools, household holdings and dividend runs."},
    {"name": "pairing", "description": "结对帮扶 — Units and cadres paired with households, visits, measures and "
                                       "coverage."},
    {"name": "projects", "description": "扶贫项目 — Projects from the library to closure: budget by source, "
                                        "funds movements, beneficiaries and public notices."},
    {"name": "ledger", "description": "资金台账 — The double-entry ledger every money movement goes through: "
                                      "accounts, balances and journal entries."},
    {"name": "monitoring", "description": "防返贫监测 — Households at risk of (re)entering poverty: warnings, the "
                                          "review workflow, measures, screenings and reports."},
    {"name": "insurance", "description": "防贫保险 — Poverty-prevention insurance policies, premiums and claims."},
    {"name": "documents", "description": "一户一档 — Photographed evidence and papers (户口本, 粮补卡, 医疗服务证, "
                                         "photos of visits, notices and acceptance): upload, download, the "
                                         "county's required list and the archive's completeness."},
    {"name": "field", "description": "外业同步 — Offline field work synced in batches from cadres' phones: "
                                     "visits, measures and evidence links, each answered on its own."},
]

_ERROR_MEANING = {
    400: "the body is not well-formed (not JSON, or not the declared media type)",
    401: "no valid bearer token",
    403: "your role lacks the right, or the object lies outside your area's writable scope",
    404: "no such object in your area",
    409: "conflicts with the current state (duplicate, already done, or changed meanwhile)",
    412: "the object changed since you read it (`If-Match` does not match its ETag)",
    413: "the body is too large",
    415: "unsupported media type",
    422: "a field is not valid (see `errors[]` with each field's path) or a business rule refuses it (see `code`)",
    429: "too many requests; retry after `Retry-After` seconds",
    503: "the database is unavailable; retry after `Retry-After` seconds",
}

# Error responses whose body is deliberately not a problem document: the readiness probe answers its
# usual health body with 503 so that load balancers and humans read the same thing.
NON_PROBLEM_ERRORS = {("/readyz", "get", "503")}

_STRING_BY_PATTERN = {
    r"^\d{12}$": "520123101000",
    r"^\d{4}Q[1-4]$": "2026Q1",
    r"^\d{4}-\d{2}$": "2026-06",
    r"^\d{4}(-(0[1-9]|1[0-2])|Q[1-4])$": "2026-06",
    r"^\d{4}$": "2026",
}
_STRING_BY_FORMAT = {
    "date": "2026-06-01",
    "date-time": "2026-06-01T09:30:00+08:00",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "binary": "",
    "password": "s3cret-Passw0rd",
    "email": "clerk@example.org",
    "uri": "https://example.org/",
}


def _perms_of(route: APIRoute) -> set[Perm]:
    found: set[Perm] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Authorize | Read):
            found.add(dep.call.perm)
        stack.extend(dep.dependencies)
    return found


def _who(route: APIRoute) -> str:
    if route.path.startswith("/bank/"):
        return ("**Who may call:** a bank's machine client, signing each request with HMAC-SHA256 "
                "(headers `X-Fupin-Client`, `X-Fupin-Timestamp`, `X-Fupin-Signature`).")
    perms = _perms_of(route)
    if not perms:
        return "**Who may call:** anyone; no token needed."
    parts = []
    for perm in sorted(perms):
        roles = sorted(r.value for r in PERMISSIONS.get(perm, frozenset()) if r is not Role.system)
        parts.append(f"right `{perm.value}`: " + ", ".join(f"`{r}`" for r in roles))
    return ("**Who may call:** " + "; ".join(parts) +
            ". Data is limited to the caller's area (a township user sees its township, a county user its county).")


def _statuses(route: APIRoute) -> list[int]:
    out = {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
    if route.body_field is not None or _takes_raw_body(route):
        out.add(400)
    if any(_conditional(m.lower(), route.path) for m in route.methods or ()):
        out.add(412)
    return sorted(out)


def _conditional(method: str, path: str) -> bool:
    """Writes the `If-Match` check applies to (see conditional.py): updates, and actions under an object."""
    return method in ("put", "patch", "delete") or (method == "post" and "{" in path)


IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}, "description": (
    "The `ETag` from your last read of this object (or of the object this action is posted under). When it no "
    "longer matches, the write is refused with 412 and nothing changes. Optional: without it the write runs "
    "unconditionally.")}
ETAG_HEADER = {"ETag": {"description": "A hash of this body; send it back as `If-Match` on a write, or as "
                                       "`If-None-Match` on a read (304 when unchanged)",
                        "schema": {"type": "string"}}}


def _takes_raw_body(route: APIRoute) -> bool:
    return "requestBody" in (route.openapi_extra or {})


def _paging(route: APIRoute) -> str | None:
    model = route.response_model
    if not (isinstance(model, type) and issubclass(model, Page)):
        return None
    params = {p.name for p in route.dependant.query_params}
    if "cursor" in params:
        limit = next((p for p in route.dependant.query_params if p.name == "limit"), None)
        most = next((m.le for m in (limit.field_info.metadata if limit else []) if getattr(m, "le", None)), None)
        total = (" Add `total=true` for `total`, the count of matching items over all pages."
                 if "total" in params else "")
        return ("**Paging:** `{items, next_cursor}`; up to `limit` items a page" + (f" (at most {most})" if most else "")
                + ". While `next_cursor` is not null, call again with `cursor=<next_cursor>` and the same filters."
                + total)
    if "limit" in params:
        return ("**Paging:** `{items, next_cursor}` with the newest `limit` items; `next_cursor` is null (this "
                "list has no further pages yet: narrow it with its filters).")
    return ("**Paging:** `{items, next_cursor}` with the whole collection in one page (it is bounded by its "
            "parent object or area); `next_cursor` is always null.")


def describe(route: APIRoute, own: str | None) -> str:
    own = (own or "").strip()
    errors = " · ".join(f"`{s}` {_ERROR_MEANING.get(s, 'error')}" for s in _statuses(route))
    sections = [own] if own else [f"{route.summary}."]
    sections.append(_who(route))
    paging = _paging(route)
    if paging:
        sections.append(paging)
    if errors:
        sections.append(f"**Errors** (`application/problem+json` with a stable `code`): {errors}.")
    return "\n\n".join(sections)


def example_of(schema: dict[str, Any], comps: dict[str, Any], *, full: bool, depth: int = 0, name: str = "") -> Any:
    """A value that fits `schema`: its own examples first, else one built from the types. `full` includes
    optional properties (responses); requests get the required ones and those the schema exemplifies."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return example_of(comps[schema["$ref"].rsplit("/", 1)[1]], comps, full=full, depth=depth + 1)
    for key in ("examples", "example"):
        if key in schema:
            value = schema[key]
            if key == "examples" and isinstance(value, list) and value:
                return copy.deepcopy(value[0])
            if key == "example":
                return copy.deepcopy(value)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            variants = [v for v in schema[key] if v.get("type") != "null"] or schema[key]
            return example_of(variants[0], comps, full=full, depth=depth + 1, name=name)
    if "allOf" in schema:
        return example_of(schema["allOf"][0], comps, full=full, depth=depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            if name in required or full or _exemplified(prop):
                out[name] = example_of(prop, comps, full=full, depth=depth + 1, name=name)
        extra = schema.get("additionalProperties")
        if not out and isinstance(extra, dict) and full:
            out["key"] = example_of(extra, comps, full=full, depth=depth + 1)
        return out
    if kind == "array":
        items = schema.get("items", {})
        return [example_of(items, comps, full=full, depth=depth + 1, name=name)] if items else []
    if kind == "string":
        if schema.get("pattern") in _STRING_BY_PATTERN:
            return _STRING_BY_PATTERN[schema["pattern"]]
        if schema.get("format") in _STRING_BY_FORMAT:
            return _STRING_BY_FORMAT[schema["format"]]
        if name.endswith("code") and "pattern" not in schema:
            return "520123101000"
        return "示例"[: max(schema.get("maxLength", 2), 1)] if schema.get("minLength", 0) <= 2 else "x" * schema["minLength"]
    if kind in ("integer", "number"):
        low = int(schema["minimum"]) if "minimum" in schema else (
            int(schema["exclusiveMinimum"]) + 1 if "exclusiveMinimum" in schema else 1)
        high = int(schema["maximum"]) if "maximum" in schema else (
            int(schema["exclusiveMaximum"]) - 1 if "exclusiveMaximum" in schema else max(low, 1) + 1000)
        preferred = 2026 if name.endswith("year") else 1
        return min(max(low, preferred), high)
    if kind == "boolean":
        return False
    return None


def _exemplified(prop: dict[str, Any]) -> bool:
    if "examples" in prop or "example" in prop:
        return True
    return any("examples" in v for v in prop.get("anyOf", []) if isinstance(v, dict))


_PROBLEM_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("request.malformed", "There was an error parsing the body", "请求体无法解析"),
    401: ("auth.unauthorized", "not authenticated", "未登录或令牌无效"),
    403: ("auth.forbidden", "your role may not do this", "当前角色无权执行此操作"),
    404: ("not_found", "not found", "未找到"),
    409: ("conflict", "conflicts with the current state", "与当前状态冲突"),
    412: ("precondition.failed", "the object changed since you read it", "对象已被他人修改,请重新读取"),
    413: ("request.too_large", "the body is too large", "请求体过大"),
    429: ("rate.limited", "too many requests", "请求过于频繁"),
    503: ("database.unavailable", "the database is unavailable", "数据库暂不可用"),
}


def _problem_content(status: int) -> dict[str, Any]:
    example: dict[str, Any] = {"type": "about:blank", "status": status, "instance": "/loan-quotas",
                               "request_id": "4f2c9a1e7b3d4c55"}
    if status == 422:
        example.update(title="Unprocessable Content", code="request.invalid",
                       detail="the request is not valid; see errors", detail_zh="请求参数不合法,详见 errors",
                       errors=[{"path": "body.amount", "type": "value_error", "message": (
                           "Value error, amounts are decimal strings with at most two places and no exponent, "
                           'sign or spaces, such as "30000.00"')}])
    else:
        code, en, zh = _PROBLEM_EXAMPLES.get(status, ("error", "error", "错误"))
        example.update(title=TITLES.get(status, "Error"), code=code, detail=en, detail_zh=zh)
    return {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}}


def refine(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the generated document in place: problem+json errors, the 400, examples, tags."""
    comps: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: dict[str, Any] = op["responses"]
            if _conditional(method, path):
                op.setdefault("parameters", []).append(IF_MATCH)
                responses.setdefault("412", {"description": "Precondition Failed"})
            if "202" in responses:
                responses["202"].setdefault("headers", {})["Location"] = {
                    "description": "The resource that shows the accepted work's status, progress and result "
                                   "(`/jobs/{id}` for staff; the file's own resource for a bank)",
                    "schema": {"type": "string"}}
            if method == "get" and "application/json" in responses.get("200", {}).get("content", {}):
                responses["200"].setdefault("headers", {}).update(ETAG_HEADER)
            if "requestBody" in op and "400" not in responses:
                responses["400"] = {"description": "Bad Request"}
            for status, resp in responses.items():
                if status.isdigit() and int(status) >= 400 and (path, method, status) not in NON_PROBLEM_ERRORS:
                    resp["content"] = _problem_content(int(status))
                    if resp.get("description") in ("Validation Error", "Successful Response", None):
                        resp["description"] = TITLES.get(int(status), "Error")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body and "examples" not in body:
                body["example"] = example_of(body.get("schema", {}), comps, full=False)
            for status in ("200", "201", "202"):
                media = responses.get(status, {}).get("content", {}).get("application/json")
                if media is not None and media.get("schema") and "example" not in media and "examples" not in media:
                    media["example"] = example_of(media["schema"], comps, full=True)
    for name in ("HTTPValidationError", "ValidationError"):
        if name in comps and f'"#/components/schemas/{name}"' not in _dump(spec, skip=name):
            del comps[name]
    spec["tags"] = TAGS
    return spec


def _dump(spec: dict[str, Any], *, skip: str) -> str:
    import json

    trimmed = dict(spec)
    trimmed["components"] = {**spec["components"], "schemas": {
        k: v for k, v in spec["components"]["schemas"].items() if k != skip}}
    return json.dumps(trimmed)


def install(app: FastAPI) -> None:
    """Describe every route and refine the document FastAPI generates (once, then cached as usual)."""
    for route in api_routes(app):
        if route.include_in_schema:
            # Routers are module-level and shared by every app built in the process (tests build many):
            # compose from the route's own text, kept aside the first time, never from an earlier result.
            if not hasattr(route, "fupin_own_description"):
                route.fupin_own_description = route.description  # type: ignore[attr-defined]
            route.description = describe(route, route.fupin_own_description)  # type: ignore[attr-defined]
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
