"""Coverage, visit-rate, workload and plan-gap reports on hand-computed examples."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import insert

from fupin.auth.roles import Role
from fupin.pairing.models import Pairing, Visit
from tests.factories import new_county, token_for
from tests.pairing.factories import (
    admin,
    make_household,
    make_households,
    pair,
    post,
    set_household_status,
    unit_and_cadres,
)


async def test_coverage_counts_non_exited_households_with_an_active_cadre(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    _, (c1, c2) = await unit_and_cadres(client, office, county.code, 2)
    t_a, t_b = county.townships
    village = county.villages[t_a][0]
    a, b, c, d = [await make_household(owner_sessionmaker, village) for _ in range(4)]
    gone = await make_household(owner_sessionmaker, village)
    for hh in (a, b, gone):
        await pair(client, office, c1, hh)
    await pair(client, office, c2, c)
    await set_household_status(owner_sessionmaker, gone, "exited")
    await client.patch(f"/cadres/{c2}", headers=office, json={"status": "retired"})  # c is now uncovered

    # 4 non-exited (a, b, c, d); covered a, b → 2 / 4
    r = await client.get("/reports/pairing-coverage", headers=office, params={"area": county.code,
                                                                              "as_of": "2026-11-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["households"], body["covered"], body["rate"], body["percent"]) == (4, 2, "0.500000", "50.00")
    assert sorted(u["household_id"] for u in body["uncovered"]) == sorted([c, d])
    # before the pairings started nobody was covered
    r = await client.get("/reports/pairing-coverage", headers=office, params={"area": village, "as_of": "2025-12-31"})
    assert (r.json()["covered"], r.json()["rate"]) == (0, "0.000000")

    # an area without households: a clear null, not a division error
    r = await client.get("/reports/pairing-coverage", headers=office, params={"area": t_b})
    body = r.json()
    assert (body["households"], body["rate"], body["percent"], body["note"]) == (0, None, None, "no households")

    # cross-township: station B may not report on township A
    station_b = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t_b)
    r = await client.get("/reports/pairing-coverage", headers=station_b, params={"area": t_a})
    assert r.status_code == 404


async def test_visit_rate_is_98_15_percent_for_53_of_54(client, owner_sessionmaker, test_settings):
    """The August figure quoted in the seeds: 53 of 54 paired households visited → 98.15%."""
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    _, (c1, c2) = await unit_and_cadres(client, office, county.code, 2)
    village = county.villages[county.townships[0]][0]
    households = await make_households(owner_sessionmaker, village, 54)
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(insert(Pairing), [
            {"id": uuid.uuid4(), "area_code": village, "cadre_id": uuid.UUID(c1 if k < 30 else c2),
             "household_id": h, "start_date": date(2026, 1, 1)} for k, h in enumerate(households)])
        # 53 visited in August (one twice), the last one only in July
        rows = [{"id": uuid.uuid4(), "area_code": village, "household_id": h, "cadre_id": uuid.UUID(c2 if k >= 30 else c1),
                 "visit_date": date(2026, 8, 1 + k % 28), "kind": "routine", "findings": "", "measures": "",
                 "photo_refs": [], "on_behalf": False} for k, h in enumerate(households[:53])]
        rows.append({**rows[0], "id": uuid.uuid4(), "visit_date": date(2026, 8, 31)})
        rows.append({**rows[0], "id": uuid.uuid4(), "household_id": households[53], "cadre_id": uuid.UUID(c2),
                     "visit_date": date(2026, 7, 31)})
        await s.execute(insert(Visit), rows)

    r = await client.get("/reports/visit-rate", headers=office, params={"area": county.code, "period": "2026-08"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["paired_households"], body["meeting"]) == (54, 53)
    assert (body["rate"], body["percent"]) == ("0.981481", "98.15")
    assert (body["period_start"], body["period_end"]) == ("2026-08-01", "2026-08-31")
    [late] = body["overdue"]
    assert (late["household_id"], late["visits"], late["required"]) == (str(households[53]), 0, 1)
    assert late["cadre_ids"] == [c2]
    assert late["cadre_names"] == ["干部1"]

    # over Q3 under the monthly rule each of Jul, Aug, Sep needs a visit: nobody visited in September
    r = await client.get("/reports/visit-rate", headers=office, params={"area": village, "period": "2026Q3"})
    body = r.json()
    assert (body["paired_households"], body["meeting"], body["rate"], body["percent"]) == (54, 0, "0.000000", "0.00")

    # workload over August: c1 holds 30 and made 31 visits, c2 holds 24 and made 23
    r = await client.get("/reports/pairing-workload", headers=office, params={"area": county.code, "period": "2026-08"})
    body = r.json()
    assert [(c["active_households"], c["visits"]) for c in body["cadres"]] == [(30, 31), (24, 23)]
    assert [(u["cadres"], u["active_households"], u["visits"]) for u in body["units"]] == [(2, 54, 54)]


async def test_quarterly_rule_and_empty_area(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    _, (c1,) = await unit_and_cadres(client, office, county.code, 1)
    t_a, t_b = county.townships
    village = county.villages[t_a][0]
    a, b, c = [await make_household(owner_sessionmaker, village) for _ in range(3)]
    for hh in (a, b, c):
        await pair(client, office, c1, hh)
    await post(client, "/pairing-settings", office, {"county_code": county.code, "effective_from": "2026-07-01",
                                                     "visits_required": 2, "visit_period": "quarter"})
    for hh, day in ((a, "2026-07-03"), (a, "2026-09-20"), (b, "2026-08-10"), (c, "2026-06-30"), (c, "2026-06-29")):
        await post(client, "/visits", office, {"household_id": hh, "cadre_id": c1, "visit_date": day,
                                               "kind": "routine"})
    # Q3 needs 2 visits: a has 2, b 1, c none in the quarter → 1 of 3
    r = await client.get("/reports/visit-rate", headers=office, params={"area": t_a, "period": "2026Q3"})
    body = r.json()
    assert (body["paired_households"], body["meeting"], body["rate"], body["percent"]) == (3, 1, "0.333333", "33.33")
    assert sorted((o["household_id"], o["visits"], o["required"]) for o in body["overdue"]) == sorted(
        [(b, 1, 2), (c, 0, 2)])
    # June still falls under the default monthly rule (1 per month): only c was visited
    r = await client.get("/reports/visit-rate", headers=office, params={"area": t_a, "period": "2026-06"})
    assert (r.json()["meeting"], r.json()["rate"]) == (1, "0.333333")

    r = await client.get("/reports/visit-rate", headers=office, params={"area": t_b, "period": "2026Q3"})
    body = r.json()
    assert (body["paired_households"], body["rate"], body["percent"], body["note"]) == (0, None, None,
                                                                                       "no paired households")
    r = await client.get("/reports/visit-rate", headers=office, params={"area": t_b, "period": "2026-13"})
    assert r.status_code == 422


async def test_plan_gaps_lists_missing_empty_and_overdue_plans(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    _, (c1,) = await unit_and_cadres(client, office, county.code, 1)
    village = county.villages[county.townships[0]][0]
    no_plan, empty, overdue, fine = [await make_household(owner_sessionmaker, village) for _ in range(4)]
    for hh in (no_plan, empty, overdue, fine):
        await pair(client, office, c1, hh)
    await post(client, "/help-plans", office, {"household_id": empty, "year": 2026, "cadre_id": c1, "measures": [
        {"kind": "其他", "description": "取消的措施", "status": "cancelled"}]})
    await post(client, "/help-plans", office, {"household_id": overdue, "year": 2026, "cadre_id": c1, "measures": [
        {"kind": "产业", "description": "逾期", "target_date": "2026-06-30"},
        {"kind": "健康", "description": "按期完成", "target_date": "2026-06-30", "status": "done"}]})
    await post(client, "/help-plans", office, {"household_id": fine, "year": 2026, "cadre_id": c1, "measures": [
        {"kind": "就业", "description": "未到期", "target_date": "2026-12-31"}]})
    r = await client.get("/reports/help-plan-gaps", headers=office,
                         params={"area": village, "year": 2026, "as_of": "2026-07-01"})
    assert r.status_code == 200, r.text
    got = {h["household_id"]: (h["problem"], h["overdue_measures"]) for h in r.json()["households"]}
    assert got == {no_plan: ("no_plan", 0), empty: ("no_measure", 0), overdue: ("overdue_measure", 1)}


def test_periods_parse_exactly_and_refuse_nonsense():
    from fupin.errors import RuleViolation
    from fupin.pairing.rules import parse_period, rate

    assert parse_period("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    assert parse_period("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert parse_period("2026Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    for bad in ("0000-01", "9999Q4", "2026-13", "2026Q5", "2026-8"):
        with pytest.raises(RuleViolation):
            parse_period(bad)
    assert rate(53, 54) == (Decimal("0.981481"), Decimal("98.15"))
    assert rate(1, 8) == (Decimal("0.125000"), Decimal("12.50"))
    assert rate(1, 200000) == (Decimal("0.000005"), Decimal("0.00"))
    assert rate(1, 400000) == (Decimal("0.000003"), Decimal("0.00"))  # 0.0000025 rounds half-up
    assert rate(0, 0) == (None, None)
