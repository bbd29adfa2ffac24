"""Loans test builders: households and members straight through the ORM (the household API is built elsewhere)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.households.models import Household, Member
from fupin.loans import postings
from fupin.loans.models import LoanCertificate, LoanQuota, LoanTownshipReadiness

_ids = itertools.count(1)


async def make_household(
    sm: async_sessionmaker[AsyncSession], village: str, *, category: str = "general", labour: str = "ordinary",
    civil: bool = True, members: int = 2, family_planning: bool = False, veteran: bool = False,
    certificate: bool = True,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A household with `members` members (the head first); returns (household id, head member id)."""
    n = next(_ids)
    async with sm() as session, session.begin():
        hh = Household(area_code=village, household_no=f"H{n:05d}-{uuid.uuid4().hex[:6]}", head_name=f"户主{n}",
                       category=category, main_cause="lack_capital", secondary_causes=[], status="registered",
                       family_planning=family_planning, veteran=veteran, income_per_capita=Decimal("0"))
        session.add(hh)
        await session.flush()
        head_id = uuid.uuid4()
        for i in range(members):
            session.add(Member(id=head_id if i == 0 else uuid.uuid4(), household_id=hh.id, area_code=village,
                               name=f"成员{n}-{i}", id_number=f"{uuid.uuid4().int % 10**17:017d}X",
                               sex="M", birth_date=date(1980, 1, 1), relation="户主" if i == 0 else "子女",
                               labour=labour, full_civil_capacity=civil if i == 0 else True))
        if certificate:
            session.add(LoanCertificate(area_code=village, household_id=hh.id, status="issued", credit_rating="good",
                                        village_opinion="守信", village_reviewed_on=date(2026, 1, 5),
                                        number=f"C{n}", issued_on=date(2026, 1, 6), issued_by="coop"))
        return hh.id, head_id


async def ready_township(sm: async_sessionmaker[AsyncSession], township: str, *, quota: str | None = "1000000.00",
                         year: int = 2026) -> None:
    async with sm() as session, session.begin():
        session.add(LoanTownshipReadiness(area_code=township, ready=True, note=""))
        if quota is not None:
            session.add(LoanQuota(area_code=township, year=year, amount=Decimal(quota)))


@dataclass(frozen=True)
class Bank:
    client_id: str
    secret: str
    area_code: str


async def make_bank(sm: async_sessionmaker[AsyncSession], area_code: str) -> Bank:
    bank = Bank(f"coop-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex, area_code)
    async with sm() as session, session.begin():
        await postings.create_client(session, client_id=bank.client_id, institution_code="RCC" + area_code[6:9],
                                     area_code=area_code, secret=bank.secret)
    return bank


def signed(bank: Bank, payload: Any, *, ts: int | None = None, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    sig = hmac.new((secret or bank.secret).encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return body, {"X-Fupin-Client": bank.client_id, "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": sig,
                  "Content-Type": "application/json"}


async def post_events(client: httpx.AsyncClient, bank: Bank, payload: Any, **kw: Any) -> httpx.Response:
    body, headers = signed(bank, payload, **kw)
    return await client.post("/bank/loan-events", content=body, headers=headers)
