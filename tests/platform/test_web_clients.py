"""What a browser frontend needs (issue 14): CORS from settings with a working preflight, and `/me`."""

from __future__ import annotations

import httpx

from fupin.auth.permissions import PERMISSIONS, Perm
from fupin.auth.roles import Role
from fupin_api.main import create_app
from tests.factories import new_county, token_for

ORIGIN = "https://fupin.example.gov.cn"


async def test_preflight_from_an_allowed_origin_is_answered_and_others_get_no_cors_headers(test_settings):
    app = create_app(test_settings.model_copy(update={"cors_origins": [ORIGIN]}), connect_redis=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        r = await c.options("/households", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, if-match, content-type"})
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "PATCH" in r.headers["access-control-allow-methods"]
        assert "if-match" in r.headers["access-control-allow-headers"].lower()

        r = await c.options("/households", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "GET"})
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers

        r = await c.get("/healthz", headers={"Origin": ORIGIN})
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "ETag" in r.headers["access-control-expose-headers"]


async def test_without_configured_origins_there_is_no_cross_origin_access(client):
    r = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in r.headers


async def test_me_tells_role_area_and_rights(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    township = county.townships[0]
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
    r = await client.get("/me", headers=hdr)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["role"] == "township_station"
    assert (me["area"]["code"], me["area"]["level"]) == (township, "township")
    assert me["area"]["name"].startswith("测试乡")
    assert me["username"].startswith("u")
    expected = sorted(p.value for p, roles in PERMISSIONS.items() if Role.township_station in roles)
    assert me["rights"] == expected
    assert Perm.loan_step.value in me["rights"]
    assert Perm.area_write.value not in me["rights"]

    r = await client.get("/me")
    assert r.status_code == 401


async def test_etag_on_reads_and_if_match_on_writes(client, owner_sessionmaker, test_settings):
    from tests.pairing.factories import make_household

    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    village = county.villages[county.townships[0]][0]
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village)
    hid = await make_household(owner_sessionmaker, village)
    url = f"/households/{hid}"

    r = await client.get(url, headers=hdr)
    assert r.status_code == 200, r.text
    tag = r.headers["etag"]
    again = await client.get(url, headers=hdr)
    assert again.headers["etag"] == tag  # stable while nothing changes
    r = await client.get(url, headers={**hdr, "If-None-Match": tag})
    assert r.status_code == 304
    assert r.content == b""

    # Editor A saves with the tag it read; editor B, holding the same (now stale) tag, is refused.
    r = await client.patch(url, headers={**hdr, "If-Match": tag}, json={"address": "一组 12 号"})
    assert r.status_code == 200, r.text
    new_tag = r.headers["etag"]
    assert new_tag != tag
    assert (await client.get(url, headers=hdr)).headers["etag"] == new_tag
    r = await client.patch(url, headers={**hdr, "If-Match": tag}, json={"address": "二组 3 号"})
    assert r.status_code == 412, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "precondition.failed"
    assert (await client.get(url, headers=hdr)).json()["address"] == "一组 12 号"

    # Honoured, not required: a write without If-Match still runs; `*` matches any current version.
    r = await client.patch(url, headers=hdr, json={"address": "三组 1 号"})
    assert r.status_code == 200
    r = await client.patch(url, headers={**hdr, "If-Match": "*"}, json={"address": "四组 2 号"})
    assert r.status_code == 200

    # A workflow action posted under the object is conditional on the object.
    r = await client.post(f"{url}/transitions", headers={**hdr, "If-Match": tag},
                          json={"to": "exited", "on": "2026-10-01"})
    assert r.status_code == 412, r.text
    assert r.json()["extra"]["current_etag"] == (await client.get(url, headers=hdr)).headers["etag"]


async def test_accepted_work_points_at_its_job_with_progress(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    r = await client.post("/jobs/audit-verify", headers=hdr)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/jobs/{r.json()['id']}"
    job = await client.get(r.headers["location"], headers=hdr)
    assert job.status_code == 200
    assert job.json()["kind"] == r.json()["kind"]
    assert "progress" in job.json()

    office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
    r = await client.post("/repayment-checks", headers=office, json={
        "area_code": county.code, "period_start": "2026-01-01", "period_end": "2026-03-31"})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/jobs/{r.json()['job_id']}"
    assert (await client.get(r.headers["location"], headers=office)).status_code == 200


async def test_malformed_bodies_get_problem_documents(client):
    """Broken JSON is a 422 (`json_invalid`); a body that cannot even be decoded is the documented 400."""
    r = await client.put("/loan-quotas", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["type"] == "json_invalid"
    r = await client.put("/loan-quotas", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
