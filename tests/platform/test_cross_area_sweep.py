"""The cross-area sweep: every role calls every route that takes an id or an area with another township's
and another county's objects, and must be answered 404 (a foreign object) or 403 (a missing right), never
2xx with foreign data; every list route, asked by every role, shows no foreign row.

Generated, not written route by route: the routes come from the app (as the OpenAPI document lists them),
the expected answer from the permission table (`fupin.auth.permissions`) through each route's
`Authorized`/`Reading` dependency, the objects from `FIXTURES`, keyed by the route template up to its last
path parameter (so `/households/{household_id}/anything-new` is covered at once). A route whose path
parameters no fixture can fill FAILS, asking for a mapping: nothing is skipped silently.

One seeded county (the demo's steps) is the victim for the whole module; the callers sit in
another township of it and in another county.
"""

from __future__ import annotations

import asyncio
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
from tests.factories import new_county

VICTIM = "939901000000"
AREA_QUERY = ("area", "area_code")
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

    return World(t1, county_samples, township_samples, callers, uuids(county_samples), uuids(township_samples))


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


async def _probe(client: httpx.AsyncClient, spec: dict[str, Any], route: APIRoute, method: str, caller: Caller,
                 world: World, tally: Tally) -> None:
    op = spec["paths"][route.path][method.lower()]
    params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
    area_params = [p for p in op.get("parameters", []) if p["in"] == "query" and p["name"] in AREA_QUERY]
    required_query = [p for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")
                      and p["name"] not in AREA_QUERY]
    township = caller.probe == "other township"
    prefix = world.township[:9] if township else VICTIM[:6]
    foreign = world.township_ids if township else world.county_ids
    if township and route.path in COUNTY_DIRECTORY:
        foreign = set()
    ids: dict[str, str] = {}
    target_area = world.township if township else VICTIM
    if params:
        key = fixture_key(route.path)
        samples = world.township_samples if township else world.county_samples
        if key not in FIXTURES:
            tally.unfillable.append(f"{method} {route.path}: no fixture for {key!r}; add it to FIXTURES")
            return
        if key not in samples:
            if township and key in world.county_samples:
                return  # every object of this kind sits at county level: no other township's object exists
            tally.unfillable.append(f"{method} {route.path}: the seed has no {key!r} object; extend _extras")
            return
        ids = samples[key]
        target_area = ids["area_code"]
    path = route.path
    for name in params:
        path = path.replace("{" + name + "}", ids[name])
    query = {p["name"]: target_area for p in area_params}
    for p in required_query:
        query[p["name"]] = sample(spec, p.get("schema", {}), p["name"], ids)
    body_schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {}) or {}).get("schema")
    content = json.dumps(sample(spec, body_schema, "", ids)).encode() if body_schema else b""
    headers = caller.signed(content) if caller.bank else {**caller.headers, "Content-Type": "application/json"}
    r = await client.request(method, path, params=query, content=content or None, headers=headers)
    tally.probes += 1
    tally.statuses[str(r.status_code)] += 1
    what = f"{caller.role.value} ({caller.probe}) {method} {route.path}"
    perm = perm_of(route)
    if r.status_code == 422 and r.json().get("code") == "request.invalid":
        tally.shape_refused.add(f"{method} {route.path}")
        return
    if params:
        expected = {401} if is_signed(op) and not caller.bank else (
            {404} if is_signed(op) else ({403} if perm is None or not allowed(caller.role, perm) else {403, 404}))
        if r.status_code not in expected:
            tally.leaks.append(f"{what}: {r.status_code}, expected {sorted(expected)}: {r.text[:300]}")
            return
    elif r.status_code < 300 and (leak := foreign_data(r.text, prefix, foreign, path + str(query))):
        tally.leaks.append(f"{what}?{query}: 2xx with {leak}")
        return
    if (leak := foreign_data(r.text, prefix, foreign, path + str(query))) is not None:
        tally.leaks.append(f"{what}: {r.status_code} with {leak}")


async def test_no_role_reaches_another_areas_objects(app, client, world) -> None:
    spec = app.openapi()
    tally = Tally()
    started = time.perf_counter()
    jobs: list[tuple[APIRoute, str, Caller]] = []
    for route in api_routes(app):
        if not route.include_in_schema or route.path in PUBLIC:
            continue
        for method in sorted(route.methods):
            op = spec["paths"][route.path][method.lower()]
            takes_area = any(p["in"] == "query" and p["name"] in AREA_QUERY for p in op.get("parameters", []))
            is_list = method == "GET" and not route.param_convertors
            if not (route.param_convertors or takes_area or is_list):
                continue
            for caller in world.callers:
                if (caller.bank and not is_signed(op)) or (not caller.bank and is_signed(op) and not route.param_convertors):
                    continue  # machine clients call only the signed routes; staff probe those by id too
                jobs.append((route, method, caller))
    gate = asyncio.Semaphore(6)

    async def run(route: APIRoute, method: str, caller: Caller) -> None:
        async with gate:
            await _probe(client, spec, route, method, caller, world, tally)

    await asyncio.gather(*(run(*j) for j in jobs))
    elapsed = time.perf_counter() - started
    routes = len({(r.path, m) for r, m, _ in jobs})
    print(f"\nsweep: {tally.probes} probes, {routes} routes x {len(world.callers)} callers in {elapsed:.1f} s; "
          f"statuses {dict(tally.statuses)}; refused by shape (not probed further): {len(tally.shape_refused)} "
          f"{sorted(tally.shape_refused)}")
    assert not tally.unfillable, "\n".join(sorted(set(tally.unfillable)))
    assert not tally.leaks, "\n".join([f"{len(tally.leaks)} leaks:", *sorted(tally.leaks)])


def test_every_id_route_has_a_fixture(app) -> None:
    """Fails for a new kind of id before the sweep runs: the message names the template to map."""
    missing = sorted({fixture_key(r.path) for r in api_routes(app)
                      if r.include_in_schema and r.param_convertors and fixture_key(r.path) not in FIXTURES})
    assert not missing, f"add these to FIXTURES in {__name__}: {missing}"
