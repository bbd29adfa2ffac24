"""The yearly monitoring report with hand-counted figures, and the second wall: row-level security on
every table this domain adds."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, text

from fupin.db import set_area_scope
from fupin.monitoring.models import MonitoredHousehold
from fupin.seeding import idcard
from tests.monitoring.factories import (
    R,
    exited_household,
    plain_cadre,
    post,
    step,
    to_monitored,
    verification,
    warning_body,
)
from tests.monitoring.test_insurance import LEUKAEMIA, claim_step, funded_policy

MONITORING_TABLES = (
    "monitoring_policy", "monitored_household", "monitored_person", "monitoring_warning", "monitoring_step",
    "monitoring_measure", "screening", "screening_row", "insurance_policy", "insurance_claim", "insurance_claim_bill",
)


class TestReport:
    async def test_figures_by_kind_cause_area_month_decisions_claims_and_trend(self, client, world):
        # A: warned in September, monitored on 2026-10-09 (15 days after), a measure, then a paid claim.
        a, a_people = await exited_household(world.sm, world.village)
        wa = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(a))
        await to_monitored(client, world, wa["monitored_household_id"], decide_on="2026-10-09")
        await post(client, f"/monitored-households/{wa['monitored_household_id']}/measures",
                   world.h[R.township_station], {"kind": "employment", "description": "公益岗位",
                                                 "responsible_unit": "乡人社所", "started_on": "2026-10-12"})
        # B: a disaster in the other township in October, dismissed late (2026-11-24, due 2026-11-20).
        b, _ = await exited_household(world.sm, world.other_township_village)
        station2 = await world.header(R.township_station, world.other_township_village[:9] + "000")
        wb = await post(client, "/monitoring/warnings", station2, warning_body(b, on="2026-10-30", cause="disaster"))
        village2 = await world.header(R.village_committee, world.other_township_village)
        mb = wb["monitored_household_id"]
        await step(client, world, mb, "verify", "2026-11-02", header=village2, verification=verification("8000.00"))
        await step(client, world, mb, "village_review", "2026-11-02", header=village2)
        await step(client, world, mb, "township_check", "2026-11-03", header=station2)
        await step(client, world, mb, "decide_dismiss", "2026-11-24", opinion="损失已由保险赔付")
        # C: a household outside the registry whose ID number has a wrong check character is refused whole.
        body17 = a_people[0][1][:6] + "19700101001"
        wrong_check = body17 + ("0" if idcard.check_char(body17) != "0" else "1")
        await post(client, "/monitored-households", world.h[R.village_committee],
                   {"area_code": world.village, "kind": "sudden_hardship", "income_per_capita": "3000.00",
                    "cause": "accident", "reported_on": "2026-09-01", "persons": [
                        {"name": "赵某", "id_number": wrong_check, "relation": "户主"}]},
                   status=422)  # wrong check character: refused, nothing entered
        await funded_policy(client, world)
        claim = await post(client, "/insurance-claims", world.h[R.village_committee],
                           {"monitored_household_id": wa["monitored_household_id"], "person_id": str(a_people[0][0]),
                            "submitted_on": "2026-10-15", "bills": [{**LEUKAEMIA, "bill_date": "2026-10-10"}]})
        await claim_step(client, world, claim["id"], "assess", "2026-10-16")
        await claim_step(client, world, claim["id"], "approve", "2026-10-17")
        await claim_step(client, world, claim["id"], "pay", "2026-10-19", cadre_id=await plain_cadre(client, world))

        r = await client.get("/reports/monitoring", headers=world.h[R.poverty_office],
                             params={"area_code": world.county.code, "year": 2026, "as_of": "2026-11-30"})
        assert r.status_code == 200, r.text
        rep = r.json()
        assert rep["households"] == 2
        assert rep["by_kind"] == {"unstable_exited": 2}
        assert rep["by_cause"] == {"illness": 1, "disaster": 1}
        assert rep["by_area"] == {world.township: 1, world.other_township_village[:9] + "000": 1}
        assert rep["by_month"] == {"2026-09": 1, "2026-10": 1}
        # A: 2026-09-24 → 2026-10-09 = 15 days; B: 2026-10-30 → 2026-11-24 = 25 days; average 20.00
        assert (rep["decided"], rep["decided_late"], rep["average_days_to_decision"]) == (2, 1, "20.00")
        assert (rep["under_monitoring"], rep["with_measures"], rep["measures_share"]) == (1, 1, "1.000000")
        assert rep["claims"] == {"by_status": {"submitted": 0, "assessed": 0, "approved": 0, "paid": 1, "rejected": 0},
                                 "paid_total": "181209.09", "persons_aided": 1, "per_person": "181209.09"}
        assert rep["trend"] == [
            {"area_code": world.township, "month": "2026-09", "warned": 1, "monitored": 0, "eliminated": 0},
            {"area_code": world.township, "month": "2026-10", "warned": 0, "monitored": 1, "eliminated": 0},
            {"area_code": world.other_township_village[:9] + "000", "month": "2026-10", "warned": 1, "monitored": 0,
             "eliminated": 0},
        ]
        own = (await client.get("/reports/monitoring", headers=station2,
                                params={"area_code": world.other_township_village[:9] + "000", "year": 2026})).json()
        assert (own["households"], own["claims"]["paid_total"]) == (1, "0.00")
        assert (await client.get("/reports/monitoring", headers=station2,
                                 params={"area_code": world.county.code, "year": 2026})).status_code == 404
        cadre_header = await world.header(R.cadre, world.county.code)
        assert (await client.get("/reports/monitoring", headers=cadre_header,
                                 params={"area_code": world.county.code, "year": 2026})).status_code == 403
        assert Decimal(rep["claims"]["paid_total"]) == Decimal("181209.09")


class TestRowLevelSecurity:
    async def test_every_monitoring_table_forces_rls(self, owner_sessionmaker):
        async with owner_sessionmaker() as s:
            rows = dict((await s.execute(text(
                "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                "WHERE relname = ANY(:names) AND relkind = 'r'"), {"names": list(MONITORING_TABLES)})).all())
        assert rows == dict.fromkeys(MONITORING_TABLES, True)

    async def test_the_app_role_sees_only_its_scope_even_without_a_filter(self, client, world, app_sessionmaker):
        hh, _ = await exited_household(world.sm, world.village)
        await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(hh))
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, world.other_village[:12] + "%")
            seen = await s.scalar(select(func.count()).select_from(MonitoredHousehold).where(
                MonitoredHousehold.household_id == hh))
        assert seen == 0
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, world.village + "%")
            seen = await s.scalar(select(func.count()).select_from(MonitoredHousehold).where(
                MonitoredHousehold.household_id == hh))
        assert seen == 1
