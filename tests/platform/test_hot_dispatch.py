"""The hot reads served below FastAPI (`fupin_api.hot`) answer exactly what the FastAPI routes answer.

Every request here is sent twice, once with the dispatcher off (`app.state.hot_reads = False`: the FastAPI
route answers) and once with it on, by several callers (own area, another township, another county, a role
without the permission, tokens expired, revoked, malformed or missing) for ids and pages of their own and of
others, and with ids and query parameters that are bad or unusual. Status, headers and body must be the
same (the request id apart), so the two paths cannot drift; and the dispatcher must really have served the
requests it claims (a spy counts them), in three statements each."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from fupin.auth import service as auth_service
from fupin.auth.models import User
from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin_api import hot
from fupin_api.metrics import REQUESTS
from tests.assessment.factories import make_loan
from tests.factories import new_county, new_user, token_for
from tests.households.factories import household_body
from tests.loans.factories import make_household, ready_township


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the dispatcher answered itself (not handed to FastAPI)."""
    paths: list[str] = []
    answer = hot.HotReads._answer

    async def spy(self: hot.HotReads, scope: Any) -> bytes | None:
        body = await answer(self, scope)
        if body is not None:
            paths.append(scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else ""))
        return body

    monkeypatch.setattr(hot.HotReads, "_answer", spy)
    return paths


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        assert body.pop("request_id") == response.headers["x-request-id"]
        return response.status_code, [(k, v) for k, v in headers if k != "content-length"], body
    return response.status_code, headers, response.content


async def _both(app: Any, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """The FastAPI route's answer first (it also warms the token cache), then the dispatcher's; same or fail."""
    app.state.hot_reads = False
    try:
        slow = await client.get(url, headers=headers)
    finally:
        app.state.hot_reads = True
    fast = await client.get(url, headers=headers)
    assert _comparable(fast) == _comparable(slow), url
    return fast


async def _household(client: httpx.AsyncClient, sm: Any, settings: Any, village: str) -> str:
    hdr = await token_for(sm, settings, role=Role.village_committee, area_code=village)
    created = await client.post("/households", headers=hdr, json=household_body(village))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _application(client: httpx.AsyncClient, sm: Any, settings: Any, village: str) -> str:
    await ready_township(sm, village[:9] + "000")
    household, _ = await make_household(sm, village)
    hdr = await token_for(sm, settings, role=Role.village_committee, area_code=village)
    body = {"household_id": str(household), "amount": "20000.00", "term_months": 12, "purpose": "livestock",
            "product": "household", "on": "2026-09-28"}
    created = await client.post("/loan-applications", headers=hdr, json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_the_dispatcher_answers_as_the_fastapi_routes(app, client, owner_sessionmaker, test_settings, served):
    sm, settings = owner_sessionmaker, test_settings
    county, other_county = await new_county(sm, townships=2, villages=2), await new_county(sm, townships=1, villages=1)
    t_own, t_other = county.townships
    own, own2 = county.villages[t_own]
    other_township = county.villages[t_other][0]
    foreign = other_county.villages[other_county.townships[0]][0]
    households = {v: [await _household(client, sm, settings, v) for _ in range(3 if v == own else 1)]
                  for v in (own, other_township, foreign)}
    today = business_date()
    loans = {v: await make_loan(sm, village=v, principal="10000.00", due_on=date(today.year + 1, 3, 1),
                                repayments=[("2500.00", date(today.year, 1, 5))])
             for v in (own, other_township, foreign)}
    await make_loan(sm, village=own, principal="5000.00", due_on=date(today.year - 1, 6, 1))  # shown as overdue
    applications = {v: await _application(client, sm, settings, v) for v in (own, other_township, foreign)}

    callers = {
        "county": await token_for(sm, settings, role=Role.county_admin, area_code=county.code),
        "township": await token_for(sm, settings, role=Role.township_station, area_code=t_own),
        "village": await token_for(sm, settings, role=Role.village_committee, area_code=own),
        "auditor": await token_for(sm, settings, role=Role.auditor, area_code=t_own),  # ID numbers masked
        "no permission": await token_for(sm, settings, role=Role.bank, area_code=county.code),
    }
    page = (await _both(app, client, "/households?area=" + own + "&limit=2", callers["village"])).json()
    assert page["next_cursor"]
    loan_page = (await _both(app, client, "/loans?limit=1", callers["county"])).json()
    assert loan_page["next_cursor"]
    urls = [
        *(f"/areas/{c}" for c in (county.code, t_own, own, other_township, foreign, "999999999999")),
        "/areas/12345", "/areas/52012300000x", "/areas/" + own + "?x=1",
        "/areas", "/areas?level=village&limit=50", f"/areas?parent={t_own}&limit=1", f"/areas?cursor={own}",
        f"/areas?parent={foreign}", "/areas?limit=0", "/areas?limit=501", "/areas?limit=abc", "/areas?limit=050",
        "/areas?level=bogus", "/areas?other=1", "/areas?limit=5&limit=6", "/areas?parent=", "/areas?cursor=1",
        *(f"/households/{h}" for hs in households.values() for h in hs),
        f"/households/{uuid.uuid4()}", "/households/not-a-uuid", "/households/" + households[own][0].upper(),
        "/households/" + households[own][0].replace("-", ""),
        f"/households?area={own}&limit=50", f"/households?area={own}&limit=2&cursor={page['next_cursor']}",
        f"/households?area={own2}", f"/households?area={other_township}", f"/households?area={foreign}",
        "/households", "/households?sort=-head_name&limit=2", "/households?sort=income_per_capita",
        "/households?sort=bogus", "/households?limit=501", "/households?cursor=garbage", "/households?area=123",
        "/households?status=poor", "/households?q=张三",
        *(f"/loans/{loan}" for loan in loans.values()), f"/loans/{uuid.uuid4()}", "/loans/123",
        "/loans", "/loans?limit=1", f"/loans?limit=1&cursor={loan_page['next_cursor']}", "/loans?status=overdue",
        "/loans?status=current", f"/loans?township={t_own}", f"/loans?township={t_other}", "/loans?status=bogus",
        "/loans?cursor=garbage", "/loans?limit=0", "/loans?other=1",
        *(f"/loan-applications/{a}" for a in applications.values()), f"/loan-applications/{uuid.uuid4()}",
        "/loan-applications/x",
    ]
    for _name, hdr in callers.items():
        for url in urls:
            await _both(app, client, url, hdr)
    # the dispatcher served every plain 200 itself, and nothing else
    fast = set(served)
    assert f"/households/{households[own][0]}" in fast
    assert f"/loans/{loans[own]}" in fast
    assert f"/areas/{own}" in fast
    assert "/areas?level=village&limit=50" in fast
    assert f"/households?area={own}&limit=50" in fast
    assert "/loans?status=overdue" in fast
    assert f"/loans?limit=1&cursor={loan_page['next_cursor']}" in fast
    assert f"/loan-applications/{applications[own]}" in fast
    for url in ("/loans?cursor=garbage", f"/loan-applications/{applications[foreign]}", "/areas/12345", "/households/not-a-uuid", "/areas?limit=0", "/households?status=poor",
                f"/households/{households[foreign][0]}", "/areas?other=1", "/areas/" + own + "?x=1"):
        assert url not in fast, url


async def test_tokens_expired_revoked_malformed_or_missing(app, client, owner_sessionmaker, test_settings, served):
    sm, settings = owner_sessionmaker, test_settings
    county = await new_county(sm, townships=1, villages=1)
    village = county.villages[county.townships[0]][0]
    household = await _household(client, sm, settings, village)
    username = await new_user(sm, role=Role.county_admin, area_code=county.code)
    async with sm() as session:
        user = (await session.scalars(select(User).where(User.username == username))).one()
    good = {"Authorization": "Bearer " + auth_service.issue_token(user, settings)}
    expired = {"Authorization": "Bearer " + auth_service.issue_token(
        user, settings.model_copy(update={"jwt_ttl_seconds": -60}))}
    urls = [f"/areas/{village}", f"/households/{household}", f"/households?area={village}", "/areas?level=village"]
    for hdr in (good, expired, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                {"Authorization": good["Authorization"].replace("Bearer", "bearer")}, {}):
        for url in urls:
            await _both(app, client, url, hdr)
    assert (await client.get(urls[0], headers=good)).status_code == 200
    assert urls[0] in served
    # revoked: the token's version is older than the user row's; the route learns it from the database
    async with sm() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(token_version=User.token_version + 1))
    app.state.auth_cache.forget(user.id)
    served.clear()
    for url in urls:
        assert (await _both(app, client, url, good)).status_code == 401
    assert served == []


async def test_three_statements_per_read_and_the_routes_own_metrics(app, client, owner_sessionmaker, test_settings,
                                                                     served):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    village = county.villages[county.townships[0]][0]
    household = await _household(client, owner_sessionmaker, test_settings, village)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village)
    statements: list[str] = []
    spied: list[Any] = []
    engine = app.state.engine.sync_engine

    def log(query: Any) -> None:
        statements.append(query.query)

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        conn = dbapi_connection.driver_connection
        if conn not in spied:
            conn.add_query_logger(log)
            spied.append(conn)

    event.listen(engine, "checkout", checkout)
    try:
        for url in (f"/households/{household}", f"/areas/{village}", f"/households?area={village}&limit=50",
                    "/areas?level=village&limit=50"):
            await client.get(url, headers=hdr)  # warms the token cache and the prepared statements
            await _logged()
            before = REQUESTS.labels("GET", _template(url), "200")._value.get()
            statements.clear()
            response = await client.get(url, headers=hdr)
            await _logged()
            assert response.status_code == 200
            assert served[-1] == url
            assert len(statements) == 3, statements
            assert statements[0].startswith("BEGIN READ ONLY; SET LOCAL fupin.scope = ")
            assert statements[2] == "COMMIT"
            assert REQUESTS.labels("GET", _template(url), "200")._value.get() == before + 1
            assert response.headers["etag"]
            assert response.headers["x-request-id"]
            assert (await client.get(url, headers={**hdr, "If-None-Match": response.headers["etag"]})).status_code == 304
    finally:
        event.remove(engine, "checkout", checkout)
        for conn in spied:  # the pool's connections keep no spy
            conn.remove_query_logger(log)


async def _logged() -> None:
    """asyncpg hands a query to its loggers with `call_soon`: let them run."""
    for _ in range(3):
        await asyncio.sleep(0)


def _template(url: str) -> str:
    path = url.split("?")[0]
    return {"/households": "/households", "/areas": "/areas"}.get(path) or (
        "/households/{household_id}" if path.startswith("/households/") else "/areas/{code}")
