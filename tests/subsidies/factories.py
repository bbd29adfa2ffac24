"""Households, loans and repayments written straight through the ORM, kept consistent:
outstanding = principal − Σ repayments; repaid_on = the day it reached zero; status follows."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.areas.codes import township_of
from fupin.households.models import Household, Member
from fupin.loans.models import Loan, LoanRepayment

_seq = itertools.count(1)


def id_number() -> str:
    return f"52{random.randint(10**15, 10**16 - 1)}"


async def household(sm: async_sessionmaker[AsyncSession], village: str, *, head: str = "张三") -> tuple[uuid.UUID, str]:
    """A registered household with an active head; returns (id, head's ID number)."""
    hid, idn = uuid.uuid4(), id_number()
    async with sm() as s, s.begin():
        s.add(Household(id=hid, area_code=village, household_no=f"H{next(_seq)}", head_name=head, address="",
                        category="general", main_cause="lack_capital", secondary_causes=[],
                        income_per_capita=Decimal("3000"), status="registered"))
        await s.flush()
        s.add(Member(household_id=hid, area_code=village, name=head, id_number=idn, sex="M",
                     birth_date=date(1980, 1, 1), relation="户主", labour="ordinary"))
    return hid, idn


async def loan(
    sm: async_sessionmaker[AsyncSession],
    village: str,
    *,
    principal: str,
    disbursed: date,
    due: date,
    repayments: Sequence[tuple[date, str]] = (),
    household_id: uuid.UUID | None = None,
    enterprise: str | None = None,
    productive: bool = True,
    coop: str = "C1",
) -> uuid.UUID:
    p = Decimal(principal)
    paid = sum((Decimal(a) for _, a in repayments), Decimal("0"))
    outstanding = p - paid
    repaid_on = max(d for d, _ in repayments) if repayments and outstanding == 0 else None
    status = "current" if repaid_on is None else "repaid_on_time" if repaid_on <= due else "repaid_late"
    lid = uuid.uuid4()
    async with sm() as s, s.begin():
        s.add(Loan(id=lid, area_code=village, township_code=township_of(village), household_id=household_id,
                   enterprise_name=enterprise, product="enterprise" if enterprise else "household",
                   purpose="livestock" if productive else "non_productive", productive=productive,
                   principal=p, outstanding=outstanding, interest_rate=Decimal("0.0435"), disbursed_on=disbursed,
                   due_on=due, repaid_on=repaid_on, status=status, coop_code=coop))
        await s.flush()
        for d, a in repayments:
            s.add(LoanRepayment(loan_id=lid, area_code=village, amount=Decimal(a), paid_on=d))
    return lid
