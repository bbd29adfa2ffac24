"""The RLS second wall on pairing tables."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select, text

from fupin.auth.principal import SYSTEM
from fupin.pairing import service
from fupin.pairing.models import Cadre, HelpingUnit, Pairing
from tests.pairing.factories import county_with_cadres, make_household


async def test_rls_hides_other_townships_pairings_and_other_counties_directory(owner_sessionmaker, app_sessionmaker):
    county, unit_id, (c1,) = await county_with_cadres(owner_sessionmaker, 1)
    _, other_unit, _ = await county_with_cadres(owner_sessionmaker, 1)
    t_a, t_b = county.townships
    ha = uuid.UUID(await make_household(owner_sessionmaker, county.villages[t_a][0]))
    hb = uuid.UUID(await make_household(owner_sessionmaker, county.villages[t_b][1]))
    async with owner_sessionmaker() as s, s.begin():
        for hh in (ha, hb):
            await service.create_pairing(s, principal=SYSTEM, cadre_id=c1, household_id=hh,
                                         start_date=date(2026, 1, 1))

    async with app_sessionmaker() as s, s.begin():
        # no filter in the query: only the database policy stands between township A and B's rows
        await s.execute(text("SELECT set_config('fupin.scope', :p, true)"), {"p": t_a[:9] + "%"})
        seen = (await s.scalars(select(Pairing.household_id).where(Pairing.cadre_id == c1))).all()
        assert seen == [ha]
        # the county directory is readable from inside the county, not from another county
        assert (await s.scalar(select(Cadre.id).where(Cadre.id == c1))) == c1
        assert await s.scalar(select(HelpingUnit.id).where(HelpingUnit.id == other_unit)) is None
        assert await s.scalar(select(HelpingUnit.id).where(HelpingUnit.id == unit_id)) == unit_id
