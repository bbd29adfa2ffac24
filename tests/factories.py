"""Small typed builders. Every test gets areas of its own from `new_county`, so tests never share rows."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.areas import service as area_service
from fupin.auth import service as auth_service
from fupin.auth.principal import SYSTEM
from fupin.auth.roles import Role
from fupin.settings import Settings

_counties = itertools.count(1)
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class County:
    code: str
    townships: list[str]
    villages: dict[str, list[str]]  # township code -> village codes


async def new_county(
    sm: async_sessionmaker[AsyncSession], *, townships: int = 2, villages: int = 2, population: int = 1000
) -> County:
    """A county with township codes …100, …110 … and villages …200, …201: codes whose zero-stripped
    prefixes collide, so scope bugs show."""
    n = next(_counties)
    code = f"{11 + n // 90:02d}{1 + (n // 9) % 10:02d}{1 + n % 9 + 10 * random.randint(0, 8):02d}000000"
    tws: list[str] = []
    vil: dict[str, list[str]] = {}
    async with sm() as session, session.begin():
        await area_service.create_area(session, principal=SYSTEM, code=code, name=f"测试县{n}", population=0)
        for t in range(townships):
            tcode = code[:6] + f"{100 + 10 * t:03d}" + "000"
            await area_service.create_area(session, principal=SYSTEM, code=tcode, name=f"测试乡{n}-{t}", population=0)
            tws.append(tcode)
            vil[tcode] = []
            for v in range(villages):
                vcode = tcode[:9] + f"{200 + v:03d}"
                await area_service.create_area(
                    session, principal=SYSTEM, code=vcode, name=f"测试村{n}-{t}-{v}", population=population
                )
                vil[tcode].append(vcode)
    return County(code, tws, vil)


_users = itertools.count(1)


async def new_user(sm: async_sessionmaker[AsyncSession], *, role: Role, area_code: str) -> str:
    username = f"u{next(_users)}_{role.value}_{random.randint(0, 10**6)}"
    async with sm() as session, session.begin():
        await auth_service.create_user(session, username=username, password=PASSWORD, role=role, area_code=area_code)
    return username


async def token_for(sm: async_sessionmaker[AsyncSession], settings: Settings, *, role: Role, area_code: str) -> dict[str, str]:
    """Authorization header for a fresh user of `role` scoped to `area_code`."""
    username = await new_user(sm, role=role, area_code=area_code)
    async with sm() as session:
        from sqlalchemy import select

        from fupin.auth.models import User

        user = (await session.scalars(select(User).where(User.username == username))).one()
    return {"Authorization": f"Bearer {auth_service.issue_token(user, settings)}"}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})
