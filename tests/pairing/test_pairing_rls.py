"""The RLS second wall on pairing tables."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select, text

from fupin.auth.principal import SYSTEM
from fupin.pairing import service, structure
from fupin.pairing.models import Cadre, HelpingUnit, Pairing
from tests.factories import new_county
from tests.pairing.factories import make_household


async def _county_with_cadres(sm, n: int):
    county = await new_county(sm)
    async with sm() as s, s.begin():
        unit = await structure.create_unit(s, principal=SYSTEM, area_code=county.code, name="县教育局", kind="bureau",
                                         level="county", contact="")
        cadres = [await structure.create_cadre(s, principal=SYSTEM, unit_id=unit.id, name=f"c{k}", level="county",
                                             contact="", user_id=None) for k in range(n)]
    return county, unit.id, [c.id for c in cadres]


async def test_rls_hides_other_townships_pairings_and_other_counties_directory(owner_sessionmaker, app_sessionmaker):
    county, unit_id, (c1,) = await _county_with_cadres(owner_sessionmaker, 1)
    _, other_unit, _ = await _county_with_cadres(owner_sessionmaker, 1)
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
