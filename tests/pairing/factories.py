"""Builders for pairing tests: households inserted with the ORM (the households API is built elsewhere),
cadre users, and small API helpers."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.auth.models import User
from fupin.auth.principal import SYSTEM
from fupin.auth.roles import Role
from fupin.households.models import Household
from fupin.pairing import structure
from fupin.settings import Settings
from tests.factories import new_county, new_user, token_for

_numbers = itertools.count(1)


async def make_households(
    sm: async_sessionmaker[AsyncSession], village: str, n: int = 1, *, status: str = "registered"
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    rows: list[dict[str, Any]] = [
        {"id": i, "area_code": village, "household_no": f"H{next(_numbers):06d}", "head_name": f"户主{k}",
         "address": "", "category": "general", "main_cause": "因病", "secondary_causes": [],
         "income_per_capita": 0, "family_planning": False, "veteran": False, "status": status}
        for k, i in enumerate(ids)
    ]
    async with sm() as session, session.begin():
        await session.execute(insert(Household), rows)
    return ids


async def make_household(sm: async_sessionmaker[AsyncSession], village: str, *, status: str = "registered") -> str:
    return str((await make_households(sm, village, 1, status=status))[0])


async def set_household_status(sm: async_sessionmaker[AsyncSession], household_id: str, status: str) -> None:
    async with sm() as session, session.begin():
        h = await session.get(Household, uuid.UUID(household_id))
        assert h is not None
        h.status = status


async def cadre_user(
    sm: async_sessionmaker[AsyncSession], settings: Settings, county: str
) -> tuple[str, dict[str, str]]:
    """(user id, auth header) of a fresh user with role cadre in `county`."""
    username = await new_user(sm, role=Role.cadre, area_code=county)
    async with sm() as session:
        user = (await session.scalars(select(User).where(User.username == username))).one()
    from fupin.auth import service as auth_service

    return str(user.id), {"Authorization": f"Bearer {auth_service.issue_token(user, settings)}"}


async def admin(sm: async_sessionmaker[AsyncSession], settings: Settings, area: str) -> dict[str, str]:
    return await token_for(sm, settings, role=Role.poverty_office, area_code=area)


async def post(client: httpx.AsyncClient, path: str, headers: dict[str, str], body: dict[str, Any],
               status: int = 201) -> dict[str, Any]:
    r = await client.post(path, headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def unit_and_cadres(
    client: httpx.AsyncClient, headers: dict[str, str], county: str, n: int, *, user_ids: list[str] | None = None
) -> tuple[str, list[str]]:
    unit = await post(client, "/helping-units", headers,
                      {"area_code": county, "name": "县交通运输局", "kind": "bureau"})
    cadres = []
    for k in range(n):
        body: dict[str, Any] = {"unit_id": unit["id"], "name": f"干部{k}", "level": "county"}
        if user_ids and k < len(user_ids):
            body["user_id"] = user_ids[k]
        cadres.append((await post(client, "/cadres", headers, body))["id"])
    return unit["id"], cadres


async def pair(client: httpx.AsyncClient, headers: dict[str, str], cadre: str, household: str,
               start: str = "2026-01-01", status: int = 201) -> dict[str, Any]:
    return await post(client, "/pairings", headers,
                      {"cadre_id": cadre, "household_id": household, "start_date": start}, status)


async def county_with_cadres(sm: async_sessionmaker[AsyncSession], n: int) -> tuple[Any, uuid.UUID, list[uuid.UUID]]:
    """A new county with one county-level helping unit and `n` cadres in it (no login users)."""
    county = await new_county(sm)
    async with sm() as s, s.begin():
        unit = await structure.create_unit(s, principal=SYSTEM, area_code=county.code, name="县教育局", kind="bureau",
                                         level="county", contact="")
        cadres = [await structure.create_cadre(s, principal=SYSTEM, unit_id=unit.id, name=f"c{k}", level="county",
                                             contact="", user_id=None) for k in range(n)]
    return county, unit.id, [c.id for c in cadres]
