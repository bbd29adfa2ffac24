"""Loans and repayments written straight through the ORM (the loan API is another domain's work)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.loans.models import Loan, LoanQuota, LoanRepayment


async def make_loan(
    sm: async_sessionmaker[AsyncSession],
    *,
    village: str,
    principal: str,
    due_on: date,
    repayments: list[tuple[str, date]] = (),  # type: ignore[assignment]
) -> uuid.UUID:
    amount = Decimal(principal)
    paid = sum((Decimal(a) for a, _ in repayments), Decimal("0.00"))
    async with sm() as session, session.begin():
        loan = Loan(
            area_code=village, township_code=village[:9] + "000", product="household", purpose="livestock",
            productive=True, principal=amount, outstanding=max(amount - paid, Decimal("0.00")),
            interest_rate=Decimal("0.058000"), disbursed_on=date(due_on.year - 1, due_on.month, 1), due_on=due_on,
            status="current", coop_code="coop-1",
        )
        session.add(loan)
        await session.flush()
        for a, on in repayments:
            session.add(LoanRepayment(loan_id=loan.id, area_code=village, amount=Decimal(a), paid_on=on))
        return loan.id


async def repay(sm: async_sessionmaker[AsyncSession], *, loan_id: uuid.UUID, village: str, amount: str, on: date) -> None:
    async with sm() as session, session.begin():
        session.add(LoanRepayment(loan_id=loan_id, area_code=village, amount=Decimal(amount), paid_on=on))


async def set_quota(sm: async_sessionmaker[AsyncSession], *, township: str, year: int, amount: str) -> None:
    """This year's quota (what the loans domain would have set) for the annual proposal to adjust."""
    async with sm() as session, session.begin():
        session.add(LoanQuota(area_code=township, year=year, amount=Decimal(amount)))
