from __future__ import annotations

from dataclasses import dataclass

import pytest

from fupin.auth.roles import Role
from tests.factories import County, new_county, token_for
from tests.loans.factories import ready_township


@dataclass
class World:
    county: County
    township: str
    village: str
    h: dict[Role, dict[str, str]]


@pytest.fixture
async def world(owner_sessionmaker, test_settings) -> World:
    county = await new_county(owner_sessionmaker, townships=2, villages=2)
    tw = county.townships[0]
    village = county.villages[tw][0]
    await ready_township(owner_sessionmaker, tw)
    where = {Role.village_committee: village, Role.township_station: tw, Role.credit_coop: tw,
             Role.poverty_office: county.code, Role.credit_union: county.code, Role.county_admin: county.code}
    h = {r: await token_for(owner_sessionmaker, test_settings, role=r, area_code=a) for r, a in where.items()}
    return World(county, tw, village, h)
