"""Households for dividend tests, inserted directly (the households API is built elsewhere)."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.households.models import Household, Member
from fupin.loans.models import Loan

_seq = itertools.count(1)
_RELATIONS = ["户主", "配偶", "子女", "子女", "父母", "父母", "孙辈", "其他"]


def _id_number() -> str:
    return f"{random.randint(10**16, 10**17 - 1)}{random.randint(0, 9)}"


async def make_household(
    sm: async_sessionmaker[AsyncSession], *, village: str, persons: int = 3, status: str = "registered",
    inactive_members: int = 0,
) -> uuid.UUID:
    """A household of `persons` active members (plus some inactive ones, who must not count)."""
    n = next(_seq)
    hid = uuid.uuid4()
    async with sm() as session, session.begin():
        session.add(Household(
            id=hid, area_code=village, household_no=f"D{n:06d}", head_name=f"户主{n}", address="", category="general",
            main_cause="因病", secondary_causes=[], status=status, year_identified=2015,
        ))
        await session.flush()
        for i in range(persons + inactive_members):
            session.add(Member(
                household_id=hid, area_code=village, name=f"成员{n}-{i}", id_number=_id_number(), sex="M",
                birth_date=date(1970 + i, 1, 1), relation=_RELATIONS[i % len(_RELATIONS)], labour="ordinary",
                active=i < persons,
            ))
    return hid


async def make_loan(sm: async_sessionmaker[AsyncSession], *, household_id: uuid.UUID, village: str, principal: str) -> uuid.UUID:
    lid = uuid.uuid4()
    async with sm() as session, session.begin():
        session.add(Loan(
            id=lid, area_code=village, township_code=village[:9] + "000", household_id=household_id,
            product="tehuidai", purpose="other_farming", principal=principal, outstanding=principal,
            interest_rate="0.0435", disbursed_on=date(2017, 1, 1), due_on=date(2019, 12, 31), status="current",
            coop_code="coop-1",
        ))
    return lid
