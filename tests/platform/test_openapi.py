"""The committed OpenAPI document is current, every route is documented and guarded, and a fuzzer
driving every operation of a live server finds no 5xx and no response that breaks its own schema."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from fupin.auth.permissions import PERMISSIONS, Perm
from fupin.auth.roles import Role
from fupin.settings import Settings
from fupin_api.main import create_app
from fupin_api.openapi import api_routes, render
from fupin_api.openapi_contract import _perms_of
from tests.live import live_api

ROOT = Path(__file__).resolve().parents[2]
# Routes open to anyone (health, docs) or authenticated otherwise (token issue; HMAC-signed bank posts).
# The only rights a bank's machine client has: posting loan events.
MACHINE_PERMS = {Perm.loan_event_post}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/auth/token", "/auth/refresh", "/auth/logout"}


def _app():
    return create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x"))


def _api_routes() -> list[APIRoute]:
    return [r for r in api_routes(_app()) if r.include_in_schema]




def test_committed_openapi_matches_the_app():
    committed = (ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(_app()), "openapi/openapi.json is stale: run `make openapi`"


def test_no_route_is_shadowed_by_an_earlier_one():
    """Routers are included hot reads first (routes/__init__.py): that is only safe while no route can
    take a request meant for a later one (e.g. `GET /x/{id}` before `GET /x/export`)."""
    routes = api_routes(_app())
    shadowed = []
    for i, later in enumerate(routes):
        concrete = later.path.replace("{", "p").replace("}", "")
        shadowed += [f"{earlier.path} takes {later.path}" for earlier in routes[:i]
                     if earlier.methods & later.methods and earlier.path != later.path
                     and earlier.path_regex.match(concrete)]
    assert shadowed == []


@pytest.mark.parametrize("route", _api_routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_every_route_is_documented_and_guarded(route: APIRoute):
    assert route.summary, "summary missing"
    assert route.tags, "tags missing"
    assert route.response_model is not None or route.response_class is not None
    if route.path in PUBLIC or route.path.startswith("/bank/"):
        return
    perms = _perms_of(route)
    assert perms, "route admits callers without a permission check (deny by default)"
    assert 401 in route.responses or "401" in route.responses


def test_permission_table_is_explicit_and_machine_clients_get_no_staff_rights():
    for perm in Perm:
        assert perm in PERMISSIONS, f"{perm} has no row in the permission table"
        assert Role.bank not in PERMISSIONS[perm] or perm in MACHINE_PERMS, perm
        assert Role.system not in PERMISSIONS[perm]


# --- schemathesis against a live server -------------------------------------------------------

@pytest.fixture(scope="module")
def live_server(test_settings) -> Iterator[tuple[str, dict[str, str]]]:
    from fupin.db import make_engine, make_sessionmaker
    from tests.factories import new_county, token_for

    async def make_token() -> dict[str, str]:
        engine = make_engine(test_settings.database_url, name="fuzz-setup", pool_size=1)
        sm = make_sessionmaker(engine)
        county = await new_county(sm)
        hdr = await token_for(sm, test_settings, role=Role.county_admin, area_code=county.code)
        await engine.dispose()
        return hdr

    headers = asyncio.run(make_token())
    with live_api() as base:
        yield base, headers


def test_fuzz_every_operation_no_5xx(live_server):
    base, headers = live_server
    # Fetched here with a generous timeout: the first render of a large schema on a loaded CI machine may
    # take longer than the loader's own 10 s.
    schema = httpx.get(base + "/openapi.json", headers=headers, timeout=120).raise_for_status().json()
    api = schemathesis.openapi.from_dict(schema)
    examples = int(os.environ.get("FUPIN_FUZZ_EXAMPLES", "8"))
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  phases=[Phase.explicit, Phase.generate])
        def exercise(case) -> None:
            case.call_and_validate(base_url=base, headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert operations > 10
    assert not failures, "\n\n".join(failures)
