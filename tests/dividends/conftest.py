from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import fupin_worker.jobs.dividends  # noqa: F401  (registers the dividend handlers and cron entry)
from fupin.ledger import service as ledger


@pytest.fixture(autouse=True)
async def ledger_balances_after_each_test(owner_sessionmaker) -> AsyncIterator[None]:
    yield
    async with owner_sessionmaker() as session:
        result = await ledger.check(session)
    assert result.ok, result
