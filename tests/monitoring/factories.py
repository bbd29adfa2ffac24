"""Builders for monitoring tests: a county with users of every role, exited registry households with valid
ID numbers (inserted with the ORM; the registry's API is another domain's), cadres paired through the
pairing API, and small API helpers."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.auth import service as auth_service
from fupin.auth.models import User
from fupin.auth.roles import Role
from fupin.households.models import Household, Member
from fupin.seeding import idcard
from fupin.settings import Settings
from tests.factories import County, new_county, new_user, token_for

R = Role
_seq = itertools.count(1)


@dataclass
class World:
    county: County
    township: str
    village: str
    other_village: str  # same township, another village
    other_township_village: str
    h: dict[Role, dict[str, str]]
    settings: Settings
    sm: async_sessionmaker[AsyncSession]
    cadre_user_ids: list[str] = field(default_factory=list)

    async def header(self, role: Role, area: str) -> dict[str, str]:
        return await token_for(self.sm, self.settings, role=role, area_code=area)


async def make_world(sm: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    county = await new_county(sm, townships=2, villages=2)
    tw, tw2 = county.townships
    village, other = county.villages[tw]
    where = {R.village_committee: village, R.township_station: tw, R.poverty_office: county.code,
             R.finance_bureau: county.code, R.county_admin: county.code, R.auditor: county.code,
             R.credit_coop: tw}
    h = {role: await token_for(sm, settings, role=role, area_code=area) for role, area in where.items()}
    return World(county, tw, village, other, county.villages[tw2][0], h, settings, sm)


def person_id(county: str) -> str:
    """A valid 18-digit ID number in the county's region, unique within the test run."""
    n = next(_seq)
    return idcard.make_id(county[:6], date(1960, 1, 1) + timedelta(days=n), 1 + n % 998)


async def exited_household(
    sm: async_sessionmaker[AsyncSession], village: str, *, members: int = 3, income: str = "6500.00",
    status: str = "exited",
) -> tuple[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """A registry household (default: exited) with `members` members; returns (id, [(member id, ID number)])."""
    people = [(uuid.uuid4(), person_id(village)) for _ in range(members)]
    async with sm() as session, session.begin():
        hh = Household(area_code=village, household_no=f"M{next(_seq):06d}", head_name=f"户主{next(_seq)}",
                       category="general", main_cause="illness", secondary_causes=[], status=status,
                       income_per_capita=Decimal(income), year_identified=2016, year_exited=2020)
        session.add(hh)
        await session.flush()
        for i, (mid, number) in enumerate(people):
            session.add(Member(id=mid, household_id=hh.id, area_code=village, name=f"成员{i}", id_number=number,
                               sex=idcard.sex_of(number), birth_date=date(1960, 1, 1),
                               relation="户主" if i == 0 else "子女", labour="ordinary"))
        return hh.id, people


async def cadre_with_user(client: httpx.AsyncClient, world: World) -> tuple[str, dict[str, str]]:
    """(cadre id, auth header) of a cadre of the county linked to a fresh user with role cadre."""
    username = await new_user(world.sm, role=R.cadre, area_code=world.county.code)
    async with world.sm() as session:
        user = (await session.scalars(select(User).where(User.username == username))).one()
    header = {"Authorization": f"Bearer {auth_service.issue_token(user, world.settings)}"}
    unit = await post(client, "/helping-units", world.h[R.poverty_office],
                      {"area_code": world.county.code, "name": "县医疗保障局", "kind": "bureau"})
    cadre = await post(client, "/cadres", world.h[R.poverty_office],
                       {"unit_id": unit["id"], "name": f"干部{next(_seq)}", "level": "county", "user_id": str(user.id)})
    return cadre["id"], header


async def plain_cadre(client: httpx.AsyncClient, world: World) -> str:
    unit = await post(client, "/helping-units", world.h[R.poverty_office],
                      {"area_code": world.county.code, "name": "县民政局", "kind": "bureau"})
    return str((await post(client, "/cadres", world.h[R.poverty_office],
                           {"unit_id": unit["id"], "name": f"干部{next(_seq)}", "level": "county"}))["id"])


async def pair_before_exit(sm: async_sessionmaker[AsyncSession], client: httpx.AsyncClient, world: World,
                           cadre_id: str, household_id: uuid.UUID) -> None:
    """Pairings are made while a household is poor and stay after it exits (不脱贫不脱钩 and consolidation)."""
    async with sm() as session, session.begin():
        hh = await session.get(Household, household_id)
        assert hh is not None
        exited, hh.status = hh.status, "registered"
    await post(client, "/pairings", world.h[R.poverty_office],
               {"cadre_id": cadre_id, "household_id": str(household_id), "start_date": "2019-03-01"})
    async with sm() as session, session.begin():
        hh = await session.get(Household, household_id)
        assert hh is not None
        hh.status = exited


async def post(client: httpx.AsyncClient, path: str, headers: dict[str, str], body: dict[str, Any],
               status: int = 201) -> dict[str, Any]:
    r = await client.post(path, headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def warning_body(household_id: uuid.UUID | str, *, on: str = "2026-09-24", cause: str = "illness",
                 **extra: Any) -> dict[str, Any]:
    return {"source": "self_report", "household_id": str(household_id), "cause": cause, "raised_on": on,
            "detail": "户主住院", **extra}


def checks(**gaps: bool) -> dict[str, bool]:
    base = {"food": True, "clothing": True, "compulsory_education": True, "basic_medical": True,
            "housing_safety": True, "drinking_water": True}
    return {**base, **gaps}


def verification(income: str = "5999.99", persons: int = 3, medical: str = "0.00", **gaps: bool) -> dict[str, Any]:
    return {"persons": persons, "income_per_capita": income, "medical_expense": medical, "disaster_loss": "0.00",
            "checks": checks(**gaps)}


async def step(client: httpx.AsyncClient, world: World, mh_id: str, name: str, on: str, *,
               status: int = 201, header: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    role = {"verify": R.village_committee, "village_review": R.village_committee,
            "propose_elimination": R.village_committee, "township_check": R.township_station,
            "township_return": R.township_station, "township_confirm_elimination": R.township_station,
            "township_reject_elimination": R.township_station}.get(name, R.poverty_office)
    r = await client.post(f"/monitored-households/{mh_id}/steps", headers=header or world.h[role],
                          json={"step": name, "on": on, **body})
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def to_monitored(client: httpx.AsyncClient, world: World, mh_id: str, *, start: str = "2026-09-25",
                       decide_on: str = "2026-10-09") -> None:
    await step(client, world, mh_id, "verify", start, verification=verification())
    await step(client, world, mh_id, "village_review", start, opinion="村民代表评议通过")
    await step(client, world, mh_id, "township_check", start, opinion="属实")
    await step(client, world, mh_id, "decide_monitor", decide_on, opinion="纳入监测")
