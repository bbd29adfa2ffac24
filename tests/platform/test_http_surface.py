from __future__ import annotations

from fupin.auth.roles import Role
from tests.factories import new_county, token_for


async def test_validation_errors_are_422_with_field_paths(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    r = await client.post("/areas", headers=hdr, json={"code": "12345", "name": ""})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    paths = {e["path"] for e in r.json()["errors"]}
    assert {"body.code", "body.name"} <= paths


async def test_unknown_route_is_problem_json_not_html(client):
    r = await client.get("/no-such-route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_oversized_body_is_413_before_parsing(client):
    r = await client.post("/auth/token", content=b"x" * (6 * 1024 * 1024),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


async def test_docs_render_with_local_assets_only(client):
    r = await client.get("/docs")
    assert r.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in r.text
    assert "cdn" not in r.text.lower()
    assert (await client.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
    r = await client.get("/redoc")
    assert "/docs-assets/redoc.standalone.js" in r.text
    assert "fonts.googleapis" not in r.text


async def test_health_ready_and_metrics(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    m = await client.get("/metrics")
    assert "fupin_http_requests_total" in m.text


async def test_security_headers_and_request_id(client):
    r = await client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(r.headers["x-request-id"]) == 32


async def test_nul_bytes_in_a_query_are_422_not_500(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    r = await client.get("/audit-log", headers=hdr, params={"entity": "a\x00b"})
    assert r.status_code == 422
    assert r.json()["code"] == "request.invalid_characters"
