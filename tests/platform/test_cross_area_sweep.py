"""The cross-area sweep: every role calls every route that takes an id or an area with another township's
and another county's objects, and must be answered 404 (a foreign object) or 403 (a missing right), never
2xx with foreign data; every list route, asked by every role, shows no foreign row.

Generated, not written route by route: the routes come from the app (as the OpenAPI document lists them),
the expected answer from the permission table (`fupin.auth.permissions`) through each route's
`Authorized`/`Reading` dependency, the objects from `FIXTURES`, keyed by the route template up to its last
path parameter (so `/households/{household_id}/anything-new` is covered at once). A route whose path
parameters no fixture can fill FAILS, asking for a mapping: nothing is skipped silently.

Writes are probed with a body that passes validation, so that the area check is what answers: the body
is the route's own OpenAPI request example (`fupin_api.openapi_contract` builds one for every JSON body and
`test_openapi_contract` proves the server accepts it), with every id field that names a fixture's object
and every area-code field pointed at the foreign object or area; `BODY_OVERRIDES` and `RAW_BODIES` complete
the few routes whose example alone does not get past the handler's own checks. A write route without path
parameters is probed too when its body names a foreign object or area (`POST /loan-certificates` with
another county's household). A route that still answers only 422 `request.invalid` must be listed in
`SHAPE_ONLY` with the reason; an unlisted one fails the sweep, and so does a listed one that no longer
needs to be. Around the whole sweep every table's row count is taken: nothing a refused probe sends may be
written (the denial traces of `access_denial` excepted: writing them is the point).

One seeded county (the demo's steps) is the victim for the whole module; the callers sit in
another township of it and in another county.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from fupin.auth import service as auth_service
from fupin.auth.models import User
from fupin.auth.permissions import Perm, allowed
from fupin.auth.roles import Role
from fupin.db import unit_of_work
from fupin.jobs import request_job
from fupin.loans import postings
from fupin.seeding import demo
from fupin_api.deps import Authorize, Read
from fupin_api.openapi import api_routes
from fupin_api.openapi_contract import example_of
from tests.factories import new_county

VICTIM = "939901000000"
AREA_QUERY = ("area", "area_code")
# Query parameters and body fields naming an area of a fixed level; each is given the victim's area of that
# level (a county code is foreign to another county's callers and above another township's).
LEVEL_FIELDS = {"county": "county", "county_code": "county", "township": "township", "township_code": "township",
                "village": "village", "village_code": "village"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CODE = re.compile(r"\d{12}")
COUNTY_ROLES = (Role.county_admin, Role.poverty_office, Role.finance_bureau, Role.credit_union, Role.auditor)
TOWNSHIP_ROLES = (Role.township_station, Role.township_finance, Role.credit_coop)
VILLAGE_ROLES = (Role.village_committee, Role.cadre)

# Route template up to its last path parameter -> SQL naming each parameter, plus the object's area_code.
# A new route under a known template is covered by itself; a new kind of id needs one line here.
FIXTURES: dict[str, str] = {
    "/areas/{code}": "SELECT code, code AS area_code FROM area",
    "/archive/requirements/{county}": "SELECT code AS county, code AS area_code FROM area WHERE level = 'county'",
    "/archive/village-locations/{village}":
        "SELECT code AS village, code AS area_code FROM area WHERE level = 'village'",
    "/documents/{document_id}": "SELECT id AS document_id, area_code FROM document",
    "/loan-townships/{code}": "SELECT code, code AS area_code FROM area WHERE level = 'township'",
    "/bank/clients/{client_id}": "SELECT client_id, area_code FROM bank_client",
    "/bank/loan-event-files/{file_id}": "SELECT id AS file_id, area_code FROM bank_batch",
    "/cadres/{cadre_id}": "SELECT id AS cadre_id, area_code FROM cadre",
    "/dividend-pools/{pool_id}": "SELECT id AS pool_id, area_code FROM dividend_pool",
    "/dividend-pools/{pool_id}/holdings/{holding_id}":
        "SELECT pool_id, id AS holding_id, area_code FROM dividend_holding",
    "/dividend-runs/{run_id}": "SELECT id AS run_id, area_code FROM dividend_run",
    "/help-plans/{plan_id}": "SELECT id AS plan_id, area_code FROM help_plan",
    "/help-plans/{plan_id}/measures/{measure_id}": "SELECT plan_id, id AS measure_id, area_code FROM help_measure",
    "/helping-units/{unit_id}": "SELECT id AS unit_id, area_code FROM helping_unit",
    "/households/{household_id}": "SELECT id AS household_id, area_code FROM household",
    "/households/{household_id}/members/{member_id}":
        "SELECT household_id, id AS member_id, area_code FROM household_member",
    "/insurance-claims/{claim_id}": "SELECT id AS claim_id, area_code FROM insurance_claim",
    "/insurance-policies/{policy_id}": "SELECT id AS policy_id, area_code FROM insurance_policy",
    "/jobs/{run_id}": "SELECT id AS run_id, area_code FROM job_run",
    "/ledger/accounts/{account_id}": "SELECT id AS account_id, area_code FROM ledger_account",
    "/loan-applications/{application_id}": "SELECT id AS application_id, area_code FROM loan_application",
    "/loan-certificates/{certificate_id}": "SELECT id AS certificate_id, area_code FROM loan_certificate",
    "/loans/{loan_id}": "SELECT id AS loan_id, area_code FROM loan",
    "/monitored-households/{monitored_household_id}":
        "SELECT id AS monitored_household_id, area_code FROM monitored_household",
    "/monitored-households/{monitored_household_id}/measures/{measure_id}":
        "SELECT monitored_household_id, id AS measure_id, area_code FROM monitoring_measure",
    "/monitoring/screenings/{screening_id}": "SELECT id AS screening_id, area_code FROM screening",
    "/pairings/{pairing_id}": "SELECT id AS pairing_id, area_code FROM pairing",
    "/projects/{project_id}": "SELECT id AS project_id, area_code FROM project",
    "/quota-proposals/{proposal_id}": "SELECT id AS proposal_id, area_code FROM quota_proposal",
    "/repayment-checks/{check_id}": "SELECT id AS check_id, area_code FROM repayment_check",
    "/subsidy-runs/{run_id}": "SELECT id AS run_id, area_code FROM subsidy_run",
    "/users/{user_id}": "SELECT id AS user_id, area_code FROM app_user",
    "/village-assignments/{assignment_id}": "SELECT id AS assignment_id, area_code FROM village_assignment",
    "/visits/{visit_id}": "SELECT id AS visit_id, area_code FROM visit",
    "/work-teams/{team_id}": "SELECT id AS team_id, area_code FROM work_team",
}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/auth/token", "/auth/refresh", "/auth/logout"}
# Bodies the route's example does not make valid for its handler, merged over the example (into each item
# of a list body); "{county}", "{township}", "{village}" or "{<id name>}" stand for the probe's foreign area of
# that level or foreign object of that kind. Keyed "METHOD template".
VALID_ID_NUMBER = "11010519491231002X"  # a well-formed 18-digit ID number (check digit X)
BODY_OVERRIDES: dict[str, dict[str, Any]] = {
    # The examples' area codes are township codes; these objects belong to an area of another level, which
    # is checked (422) before the area's scope.
    "POST /helping-units": {"area_code": "{county}"},
    "POST /monitored-households": {"area_code": "{village}"},
    "POST /repayment-policies": {"area_code": "{county}"},
    # Bodies whose example names no object or area although the route takes one.
    "POST /areas": {"code": "{new_village}"},
    "POST /loan-applications": {"household_id": "{household_id}"},
    "POST /bank/loan-events": {"application_id": "{application_id}"},
}
# Routes that answer each item of a batch on its own (200): every item must come back refused.
ITEM_RESULTS = {"POST /field/sync", "POST /bank/loan-events"}
# Routes whose body is not JSON: (content type, body) that gets past parsing to the area check.
RAW_BODIES: dict[str, tuple[str, bytes]] = {
    "POST /monitoring/screenings": (
        "text/csv", f"id_number,name,event_on,amount\n{VALID_ID_NUMBER},示例,2026-06-01,100.00\n".encode()),
}
# Routes that only ever answer 422 `request.invalid` to the sweep, each with the reason. The sweep fails on
# a route refused by shape that is not listed here (give it a valid body instead), and on a listed route
# that is no longer refused (take it off the list).
SHAPE_ONLY: dict[str, str] = {}
# Tables a refused request writes to by design, in the caller's own area; every other table must keep its
# row count through the sweep, and no table may gain or lose a row in the victim county.
WRITTEN_BY_REFUSALS = {
    "access_denial": "every 403, 404 on an id route and failed signature leaves a (collapsed) denial trace",
    "bank_loan_event": "a bank's posted event is kept once by (client, event id), refused ones too, so that a "
                       "retry gets the same answer (the bank's idempotency record, in the bank's area)",
    "audit_event": "each refused bank event is audited, in the bank's area",
}
# Lists that are a county-wide directory by design (fupin.pairing.access: units and cadres are read from every
# township of the county). Their rows are county-level, so the foreign-area check still applies to them; only
# the ids they name (a cadre's login user, who may sit in another township) are not treated as foreign data.
COUNTY_DIRECTORY = {"/cadres", "/helping-units"}


def fixture_key(template: str) -> str:
    return template[: template.rindex("}") + 1] if "}" in template else template


def perm_of(route: APIRoute) -> Perm | None:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Authorize | Read):
            return dep.call.perm
        stack.extend(dep.dependencies)
    return None


def is_signed(op: dict[str, Any]) -> bool:
    """An HMAC-signed bank route: it reads the signing headers."""
    return any(p["in"] == "header" and p["name"].lower() == "x-fupin-client" for p in op.get("parameters", []))


@dataclass
class Caller:
    role: Role
    probe: str  # "other county" | "other township"
    area: str
    headers: dict[str, str] = field(default_factory=dict)
    bank: tuple[str, str] | None = None  # (client id, secret) for a bank's machine client

    def signed(self, body: bytes) -> dict[str, str]:
        assert self.bank is not None
        stamp = str(int(time.time()))
        sig = hmac.new(self.bank[1].encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"X-Fupin-Client": self.bank[0], "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": sig,
                "Content-Type": "application/json"}


@dataclass
class World:
    township: str  # the victim township (T1): "other township" callers sit in another township of VICTIM
    village: str  # a village of T1
    home: str  # the township of VICTIM (T2) where the "other township" callers sit
    county_samples: dict[str, dict[str, Any]]
    township_samples: dict[str, dict[str, Any]]
    callers: list[Caller]
    county_ids: set[str]  # sampled objects of the victim county (foreign to "other county" callers)
    township_ids: set[str]  # sampled objects inside the victim township (foreign to "other township" callers)


async def _seed(owner_sessionmaker) -> None:
    """The demo's steps on VICTIM: every kind of object the demo shows a newcomer, in every state (with fewer
    households and loans than `make run`'s demo: the sweep needs every kind, not volume; a seed of its own,
    because the demo derives row ids from it and tests/bench seeds another county with seed 1)."""
    sizes = {"HOUSEHOLDS": 1500, "LOANS": 900}
    saved = {k: getattr(demo, k) for k in sizes}
    for k, v in sizes.items():
        setattr(demo, k, v)
    try:
        async with unit_of_work(owner_sessionmaker) as session:
            ctx = demo.DemoContext(session=session, rng=random.Random(18), as_of=date(2026, 11, 23), county=VICTIM)
            for _, step in demo.load_steps():
                await step(ctx)
    finally:
        for k, v in saved.items():
            setattr(demo, k, v)


async def _extras(owner_sessionmaker, township: str) -> None:
    """Kinds the demo does not make, written here (as plain rows) in the victim township, so that every
    fixture has an object of another township to probe with."""
    from fupin.models import metadata

    t = metadata.tables
    village = township[:9] + "200"

    def new(table: str, **values: Any) -> Any:
        return t[table].insert().values(**values)

    async with unit_of_work(owner_sessionmaker) as s:
        await request_job(s, kind="audit.verify", key=f"audit.verify:manual:sweep-{township}", area_code=township)
        client_id = f"sweep-{township}"
        await postings.create_client(s, client_id=client_id, institution_code="RCC" + township[6:9],
                                     area_code=township, secret=uuid.uuid4().hex)
        one = lambda sql: s.scalar(text(sql), {"p": township[:9] + "%"})  # noqa: E731
        household = await one("SELECT id FROM household WHERE area_code LIKE :p LIMIT 1")
        cadre = await one("SELECT id FROM cadre LIMIT 1")
        pool = await one("SELECT id FROM dividend_pool LIMIT 1")
        await s.execute(new("bank_batch", id=uuid.uuid4(), client_id=client_id, area_code=township, source="file",
                            format="csv", status="received"))
        await s.execute(new("dividend_run", id=uuid.uuid4(), pool_id=pool, area_code=township, period="sweep",
                            period_start=date(2026, 1, 1), period_end=date(2026, 12, 31), job_key="sweep:div"))
        await s.execute(new("document", id=uuid.uuid4(), area_code=village, kind="产业照片", target_type="household",
                            target_id=household, household_id=household, sha256="0" * 64, size=1,
                            media_type="image/jpeg", filename="sweep.jpg", flags=[]))
        plan = uuid.uuid4()
        await s.execute(new("help_plan", id=plan, area_code=village, household_id=household, year=2026, cadre_id=cadre))
        await s.execute(new("help_measure", id=uuid.uuid4(), area_code=village, plan_id=plan, kind="产业",
                            description="sweep"))
        check = uuid.uuid4()
        zero = "0"
        await s.execute(new(
            "repayment_check", id=check, area_code=township, county_code=VICTIM, kind="monthly",
            period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), as_of=date(2026, 2, 1), principal_due=zero,
            principal_recovered=zero, band="standard", loans_due=0, loans_recovered=0, loans_overdue=0,
            reward_threshold="0.95", penalty_threshold="0.9", quota_increase="0.1", quota_cut="0.1",
            job_key="sweep:check"))
        await s.execute(new("quota_proposal", id=uuid.uuid4(), area_code=township, county_code=VICTIM, year=2027,
                            check_id=check, band="standard", quota_change="0", working_funds_eligible=False,
                            reward=False))
        await s.execute(new("subsidy_run", id=uuid.uuid4(), area_code=township, quarter="2026Q1", phase="settlement",
                            job_key="sweep:subsidy"))


async def _samples(owner_sessionmaker, prefix: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    async with owner_sessionmaker() as session:
        for key, sql in FIXTURES.items():
            row = (await session.execute(text(
                f"SELECT * FROM ({sql}) s WHERE s.area_code LIKE :p ORDER BY length(s.area_code) DESC, 1 LIMIT 1"),
                {"p": prefix + "%"})).mappings().first()
            if row is not None:
                out[key] = {k: str(v) for k, v in row.items()}
    return out


@pytest.fixture(scope="module")
async def world(owner_sessionmaker, test_settings) -> World:
    await _seed(owner_sessionmaker)
    async with owner_sessionmaker() as session:
        townships = list((await session.scalars(text(
            "SELECT code FROM area WHERE parent_code = :c AND level = 'township' ORDER BY code"), {"c": VICTIM})).all())
        villages = {t: list((await session.scalars(text(
            "SELECT code FROM area WHERE parent_code = :t ORDER BY code"), {"t": t})).all()) for t in townships}
    t1, t2 = townships[0], townships[1]
    await _extras(owner_sessionmaker, t1)
    other = await new_county(owner_sessionmaker, townships=1, villages=1)
    o_town = other.townships[0]
    o_village = other.villages[o_town][0]
    callers: list[Caller] = []
    for role in COUNTY_ROLES:
        callers.append(Caller(role, "other county", other.code))
    for role in TOWNSHIP_ROLES:
        callers += [Caller(role, "other county", o_town), Caller(role, "other township", t2)]
    for role in VILLAGE_ROLES:
        callers += [Caller(role, "other county", o_village), Caller(role, "other township", villages[t2][0])]
    async with unit_of_work(owner_sessionmaker) as session:
        for c in callers:
            # Tokens only: these users never log in, so no (slow) password hash is computed for them.
            user = User(username=f"sweep-{uuid.uuid4().hex[:12]}", password_hash="!", role=c.role.value,
                        area_code=c.area)
            session.add(user)
            await session.flush()
            c.headers = {"Authorization": f"Bearer {auth_service.issue_token(user, test_settings)}"}
    for probe, area in (("other county", o_town), ("other township", t2)):
        secret = uuid.uuid4().hex
        client_id = f"sweep-{uuid.uuid4().hex[:10]}"
        async with unit_of_work(owner_sessionmaker) as session:
            await postings.create_client(session, client_id=client_id, institution_code="RCC" + area[6:9],
                                         area_code=area, secret=secret)
        callers.append(Caller(Role.bank, probe, area, bank=(client_id, secret)))
    county_samples = await _samples(owner_sessionmaker, VICTIM[:6])
    township_samples = await _samples(owner_sessionmaker, t1[:9])

    def uuids(samples: dict[str, dict[str, Any]]) -> set[str]:
        return {v for row in samples.values() for v in row.values() if len(v) == 36}

    return World(t1, villages[t1][0], t2, county_samples, township_samples, callers, uuids(county_samples), uuids(township_samples))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def sample(spec: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str]) -> Any:
    """A minimal value the schema accepts; ids named like a fixture parameter get the foreign object's id."""
    schema = _resolve(spec, schema)
    if name in ids:
        return ids[name]
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(spec, o).get("type") != "null"]
            return sample(spec, options[0], name, ids)
    if "allOf" in schema:
        return sample(spec, schema["allOf"][0], name, ids)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: sample(spec, props[k], k, ids) for k in schema.get("required", []) if k in props}
    if kind == "array":
        return [sample(spec, schema["items"], name, ids) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), int(schema.get("exclusiveMinimum", 0)) + 1)
    if kind == "number":
        return max(float(schema.get("minimum", 1)), 1.0)
    if kind == "boolean":
        return False
    fmt = schema.get("format", "")
    if fmt == "date":
        return "2026-06-01"
    if fmt == "date-time":
        return "2026-06-01T00:00:00+08:00"
    if fmt == "uuid":
        return str(uuid.uuid4())
    pattern = schema.get("pattern", "")
    if "\\d{12}" in pattern or "{12}" in pattern:
        return VICTIM
    if "." in pattern and "\\d" in pattern:
        return "100.00"
    return "x" * max(int(schema.get("minLength", 1)), 1)


@dataclass
class Tally:
    probes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    unfillable: list[str] = field(default_factory=list)
    shape_refused: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)  # "METHOD template" answered 403/404/401 as expected


# Echoes of what callers sent: the problem's `instance` (the path asked for), and the objects a denial row
# names (what a caller in scope asked for, not data of the area those objects belong to).
_ECHOES = re.compile(r'"instance":"[^"]*"|"object_ids":\[[^\]]*\]')


def foreign_data(body: str, prefix: str, ids: set[str], sent: str) -> str | None:
    """A foreign area code or a foreign object id in an answer (other than the ones the caller sent)."""
    body = _ECHOES.sub("", body)
    code = re.search(rf"(?<!\d){prefix}\d{{{12 - len(prefix)}}}(?!\d)", body)
    if code and code.group(0) not in sent:
        return f"foreign area {code.group(0)}"
    for found in re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body):
        if found in ids and found not in sent:
            return f"foreign object {found}"
    return None


@dataclass
class Target:
    """What one probe points at: the foreign object of the route's fixture and, for ids and area codes named
    in a query or a body, a foreign object of every kind and the victim's area at every level."""
    ids: dict[str, str]  # path parameter -> the foreign object's id (empty for a route without path parameters)
    names: dict[str, str]  # id name (`household_id`, `cadre_id` ...) -> a foreign object of that kind
    area: str  # the foreign object's area (the victim's when there is no object), for `area` / `area_code`
    levels: dict[str, str]  # "county" / "township" / "village" -> the victim's area of that level


def level_of(code: str) -> str:
    return "county" if code.endswith("000000") else "township" if code.endswith("000") else "village"


def pointed(value: Any, target: Target, name: str = "") -> tuple[Any, int]:
    """`value` (a request example) with every id that names a fixture's kind replaced by the foreign object's
    and every area code by the victim's area of the same level; also how many were replaced."""
    if isinstance(value, dict):
        out, n = {}, 0
        for k, v in value.items():
            out[k], m = pointed(v, target, k)
            n += m
        return out, n
    if isinstance(value, list):
        items = [pointed(v, target, name) for v in value]
        return [v for v, _ in items], sum(m for _, m in items)
    if isinstance(value, str):
        if name in target.ids:
            return target.ids[name], 1
        if name in target.names and UUID.fullmatch(value):
            return target.names[name], 1
        if CODE.fullmatch(value) and (name in LEVEL_FIELDS or name in AREA_QUERY or name.endswith("_area_code")):
            level = LEVEL_FIELDS.get(name) or level_of(value)
            return (target.area if name in AREA_QUERY and level_of(target.area) == level else target.levels[level]), 1
    return value, 0


def _override(value: Any, extra: dict[str, Any], target: Target) -> Any:
    if isinstance(value, list):
        return [_override(v, extra, target) for v in value]
    if not isinstance(value, dict):
        return value
    merged = dict(value)
    for k, v in extra.items():
        name = v[1:-1] if isinstance(v, str) and v.startswith("{") and v.endswith("}") else None
        merged[k] = v if name is None else {**target.names, **target.ids, **target.levels}[name]
    return merged


def body_of(spec: dict[str, Any], op: dict[str, Any], key: str, target: Target) -> tuple[str | None, bytes, int]:
    """(content type, body, how many foreign ids and areas it names) for one probe of operation `key`."""
    if key in RAW_BODIES:
        return (*RAW_BODIES[key], 1)
    content = op.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    if media is None:
        return None, b"", 0
    example = copy.deepcopy(media["example"]) if "example" in media else sample(spec, media.get("schema", {}), "", {})
    value, n = pointed(example, target)
    if key in BODY_OVERRIDES:
        value = _override(value, BODY_OVERRIDES[key], target)
        n += sum(isinstance(v, str) and v.startswith("{") for v in BODY_OVERRIDES[key].values())
    return "application/json", json.dumps(value).encode(), n


def target_of(route: APIRoute, caller: Caller, world: World) -> Target | str | None:
    """The probe's target; a message when no fixture can fill the route (a failure), None when no object of
    this kind exists in another township (every one sits at county level: nothing to probe there)."""
    township = caller.probe == "other township"
    samples = world.township_samples if township else world.county_samples
    names: dict[str, str] = {}
    for row in samples.values():
        for k, v in row.items():
            if k != "area_code" and UUID.fullmatch(v):
                names.setdefault(k, v)
    levels = {"county": VICTIM, "township": world.township, "village": world.village,
              "new_village": world.township[:9] + "999"}  # an area to create, under the victim township
    ids: dict[str, str] = {}
    area = world.township if township else VICTIM
    if route.param_convertors:
        key = fixture_key(route.path)
        if key not in FIXTURES:
            return f"{route.path}: no fixture for {key!r}; add it to FIXTURES"
        if key not in samples:
            if township and key in world.county_samples:
                return None
            return f"{route.path}: the seed has no {key!r} object; extend _extras"
        ids = {k: v for k, v in samples[key].items() if k != "area_code"}
        area = samples[key]["area_code"]
    return Target(ids, names, area, levels)


def expected_refusal(op: dict[str, Any], route: APIRoute, caller: Caller) -> set[int]:
    """README, Access: another area's object answers 404, a right the role lacks 403 (checked first)."""
    if is_signed(op):
        return {404} if caller.bank else {401}
    perm = perm_of(route)
    return {403} if perm is None or not allowed(caller.role, perm) else {404}


def query_of(spec: dict[str, Any], op: dict[str, Any], target: Target) -> dict[str, Any]:
    comps = spec["components"]["schemas"]
    query: dict[str, Any] = {}
    for p in op.get("parameters", []):
        if p["in"] != "query":
            continue
        name = p["name"]
        if name in AREA_QUERY:
            query[name] = target.area
        elif p.get("required"):
            query[name] = (target.levels[LEVEL_FIELDS[name]] if name in LEVEL_FIELDS else
                           target.ids.get(name) or target.names.get(name) or
                           example_of(p.get("schema", {}), comps, full=False, name=name))
    return query


async def _probe(client: httpx.AsyncClient, spec: dict[str, Any], route: APIRoute, method: str, caller: Caller,
                 world: World, tally: Tally) -> None:
    op = spec["paths"][route.path][method.lower()]
    township = caller.probe == "other township"
    prefix = world.township[:9] if township else VICTIM[:6]
    foreign = world.township_ids if township else world.county_ids
    if township and route.path in COUNTY_DIRECTORY:
        foreign = set()
    target = target_of(route, caller, world)
    if target is None:
        return
    if isinstance(target, str):
        tally.unfillable.append(f"{method} {target}")
        return
    path = route.path
    for name, value in target.ids.items():
        path = path.replace("{" + name + "}", value)
    query = query_of(spec, op, target)
    media, content, named = body_of(spec, op, f"{method} {route.path}", target)
    headers = caller.signed(content) if caller.bank else dict(caller.headers)
    if media:
        headers["Content-Type"] = media
    r = await client.request(method, path, params=query, content=content or None, headers=headers)
    tally.probes += 1
    tally.statuses[str(r.status_code)] += 1
    what = f"{caller.role.value} ({caller.probe}) {method} {route.path}"
    if r.status_code == 422 and r.json().get("code") == "request.invalid":
        tally.shape_refused.add(f"{method} {route.path}")
        return
    aimed = bool(target.ids) or (method in WRITES and (named or any(n in query for n in AREA_QUERY)))
    if aimed and f"{method} {route.path}" in ITEM_RESULTS and r.status_code == 200:
        accepted = [i for i in r.json()["results"] if i["status"] != "refused"]
        if accepted or not r.json()["results"]:
            tally.leaks.append(f"{what}: items not refused: {r.text[:300]}")
            return
        tally.refused.add(f"{method} {route.path}")
    elif aimed:
        expected = expected_refusal(op, route, caller)
        if r.status_code not in expected:
            tally.leaks.append(f"{what}: {r.status_code}, expected {sorted(expected)}: {r.text[:300]}")
            return
        tally.refused.add(f"{method} {route.path}")
    elif r.status_code < 300 and (leak := foreign_data(r.text, prefix, foreign, path + str(query))):
        tally.leaks.append(f"{what}?{query}: 2xx with {leak}")
        return
    if (leak := foreign_data(r.text, prefix, foreign, path + str(query) + content.decode(errors="replace"))):
        tally.leaks.append(f"{what}: {r.status_code} with {leak}")


def probed(spec: dict[str, Any], route: APIRoute, method: str, world: World) -> bool:
    """Routes the sweep calls: those taking an id or an area, lists, and writes whose body names an object
    or an area (a foreign one in the probe)."""
    op = spec["paths"][route.path][method.lower()]
    if route.param_convertors or method == "GET":
        return True
    if any(p["in"] == "query" and p["name"] in (*AREA_QUERY, *LEVEL_FIELDS) for p in op.get("parameters", [])):
        return True
    if method not in WRITES:
        return False
    county_caller = Caller(Role.county_admin, "other county", "")
    target = target_of(route, county_caller, world)
    return isinstance(target, Target) and body_of(spec, op, f"{method} {route.path}", target)[2] > 0


async def row_counts(owner_sessionmaker, home: str) -> dict[str, int]:
    """Every table's exact row count (as the owner, which row-level security does not hide rows from), and,
    as "table@victim", the rows of tables with an area column that lie in the victim county outside `home`
    (the "other township" callers' own township); one statement."""
    async with owner_sessionmaker() as session:
        tables = (await session.execute(text(
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
            "                          AND a.attname = 'area_code' AND NOT a.attisdropped) AS has_area "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"))).all()
        parts = [f"SELECT '{t}' AS name, count(*) AS n FROM \"{t}\"" for t, _ in tables]
        parts += [f"SELECT '{t}@victim', count(*) FROM \"{t}\" WHERE area_code LIKE '{VICTIM[:6]}%' "
                  f"AND area_code NOT LIKE '{home[:9]}%'"
                  for t, has_area in tables if has_area]
        return {row.name: row.n for row in (await session.execute(text(" UNION ALL ".join(parts)))).all()}


async def test_no_role_reaches_another_areas_objects(app, client, world, owner_sessionmaker) -> None:
    spec = app.openapi()
    tally = Tally()
    started = time.perf_counter()
    jobs: list[tuple[APIRoute, str, Caller]] = []
    unaimed: list[str] = []  # writes whose path, query and body name no object and no area
    for route in api_routes(app):
        if not route.include_in_schema or route.path in PUBLIC:
            continue
        for method in sorted(route.methods):
            op = spec["paths"][route.path][method.lower()]
            if not probed(spec, route, method, world):
                unaimed += [f"{method} {route.path}"] if method in WRITES else []
                continue
            for caller in world.callers:
                if (caller.bank and not is_signed(op)) or (not caller.bank and is_signed(op) and not route.param_convertors):
                    continue  # machine clients call only the signed routes; staff probe those by id too
                jobs.append((route, method, caller))
    gate = asyncio.Semaphore(6)

    async def run(route: APIRoute, method: str, caller: Caller) -> None:
        async with gate:
            await _probe(client, spec, route, method, caller, world, tally)

    before = await row_counts(owner_sessionmaker, world.home)
    await asyncio.gather(*(run(*j) for j in jobs))
    after = await row_counts(owner_sessionmaker, world.home)
    elapsed = time.perf_counter() - started
    routes = {(r.path, m) for r, m, _ in jobs}
    writes = {f"{m} {p}" for p, m in routes if m in WRITES}
    print(f"\nsweep: {tally.probes} probes, {len(routes)} routes ({len(writes)} writes) x {len(world.callers)} "
          f"callers in {elapsed:.1f} s; statuses {dict(tally.statuses)}; writes refused by their area or right check: "
          f"{len(writes & tally.refused)}; refused by shape only: {len(tally.shape_refused)} {sorted(tally.shape_refused)}; "
          f"writes naming no object or area (not probed): {len(unaimed)} {sorted(unaimed)}")
    assert not tally.unfillable, "\n".join(sorted(set(tally.unfillable)))
    assert not tally.leaks, "\n".join([f"{len(tally.leaks)} leaks:", *sorted(tally.leaks)])
    unlisted = sorted(tally.shape_refused - SHAPE_ONLY.keys())
    assert not unlisted, f"these routes answer the sweep only 422 request.invalid, so their area check is never " \
                         f"reached: give them a valid body (BODY_OVERRIDES / RAW_BODIES) or list them in SHAPE_ONLY " \
                         f"with the reason: {unlisted}"
    stale = sorted(SHAPE_ONLY.keys() - tally.shape_refused)
    assert not stale, f"no longer refused by shape (or no longer probed): take them off SHAPE_ONLY: {stale}"
    changed = {t: (before.get(t), after.get(t)) for t in before.keys() | after.keys()
               if before.get(t) != after.get(t) and t not in WRITTEN_BY_REFUSALS}
    assert any(t.endswith("@victim") and n for t, n in before.items())  # the victim's rows are counted
    assert not changed, f"refused probes wrote rows (table: before, after): {changed}"


def test_every_id_route_has_a_fixture(app) -> None:
    """Fails for a new kind of id before the sweep runs: the message names the template to map."""
    missing = sorted({fixture_key(r.path) for r in api_routes(app)
                      if r.include_in_schema and r.param_convertors and fixture_key(r.path) not in FIXTURES})
    assert not missing, f"add these to FIXTURES in {__name__}: {missing}"
