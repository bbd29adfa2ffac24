"""Service-level atomicity: the savepoint holds even when the caller catches the refusal."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select

from fupin.auth.principal import SYSTEM
from fupin.errors import RuleViolation
from fupin.pairing import service, structure
from fupin.pairing.models import Pairing
from tests.pairing.factories import county_with_cadres, make_household


async def test_handover_refusal_caught_by_the_caller_leaves_nothing_changed(owner_sessionmaker):
    county, _, (old, ok, bad) = await county_with_cadres(owner_sessionmaker, 3)
    village = county.villages[county.townships[0]][0]
    h1 = uuid.UUID(await make_household(owner_sessionmaker, village))
    h2 = uuid.UUID(await make_household(owner_sessionmaker, village))
    async with owner_sessionmaker() as s, s.begin():
        for hh in (h1, h2):
            await service.create_pairing(s, principal=SYSTEM, cadre_id=old, household_id=hh,
                                         start_date=date(2026, 1, 1))
        await structure.update_cadre(s, principal=SYSTEM, cadre_id=old, changes={"status": "retired"})
        await structure.update_cadre(s, principal=SYSTEM, cadre_id=bad, changes={"status": "transferred"})

    async with owner_sessionmaker() as s, s.begin():
        with pytest.raises(RuleViolation) as err:
            await service.handover(s, principal=SYSTEM, cadre_id=old, handover_date=date(2026, 9, 1), reason="退休",
                                   items=[(h1, ok), (h2, bad)])
        assert err.value.code == "pairing.cadre_inactive"
        # same transaction, error swallowed: the savepoint undid the first item
        rows = (await s.execute(select(Pairing.cadre_id, Pairing.end_date).where(
            Pairing.household_id.in_([h1, h2])))).all()
        assert sorted(rows) == [(old, None), (old, None)]
        await s.commit()  # even committing afterwards keeps nothing of the failed handover
    async with owner_sessionmaker() as s:
        assert await s.scalar(select(Pairing.id).where(Pairing.cadre_id == ok)) is None
