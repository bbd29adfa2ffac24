from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fupin.ledger import service as ledger
from tests.monitoring.factories import World, make_world


@pytest.fixture
async def world(owner_sessionmaker, test_settings) -> World:
    return await make_world(owner_sessionmaker, test_settings)


@pytest.fixture(autouse=True)
async def ledger_balances_after_each_test(owner_sessionmaker) -> AsyncIterator[None]:
    yield
    async with owner_sessionmaker() as session:
        result = await ledger.check(session)
    assert result.ok, result
