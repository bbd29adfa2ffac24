"""Household lists (filters, search, sort, cursor) and statistics."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from fupin.auth.roles import Role
from fupin.calendar import business_date
from fupin.households.models import Member
from fupin.loans.models import Loan
from tests.factories import new_county, token_for
from tests.households.factories import id_number, post_import, row


class TestListAndStats:
    async def test_filters_search_sort_and_cursor(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        n_weak = id_number()
        rows = [
            row("001", v0, "王大", id_number(), 人均纯收入="3000"),
            row("002", v0, "赵二", id_number(), 人均纯收入="1000", 主要致贫原因="因学"),
            row("002", v0, "赵小", n_weak, "子女", 劳动能力="弱劳动力或半劳动力", 人均纯收入="1000", 主要致贫原因="因学"),
            row("003", v0, "孙三", id_number(), 人均纯收入="2000", 贫困户属性="低保贫困户", 其他致贫原因="因学"),
            row("004", v0, "王四", id_number(), 人均纯收入="4000"),
        ]
        assert (await post_import(client, office, rows)).status_code == 201

        async def nos(**params):
            r = await client.get("/households", headers=office, params={"area": v0, **params})
            assert r.status_code == 200, r.text
            return [h["household_no"] for h in r.json()["items"]]

        assert await nos(sort="-income_per_capita") == ["004", "001", "003", "002"]
        assert await nos(cause="schooling", sort="household_no") == ["002", "003"]
        assert await nos(category="dibao") == ["003"]
        assert await nos(labour="weak") == ["002"]
        assert await nos(q="王", sort="household_no") == ["001", "004"]
        assert await nos(q=n_weak.lower() if n_weak.endswith("X") else n_weak) == ["002"]
        # cursor pages cover everything once, in order
        seen, cursor = [], None
        while True:
            params = {"area": v0, "sort": "income_per_capita", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/households", headers=office, params=params)).json()
            seen += [h["household_no"] for h in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ["002", "003", "001", "004"]
        # has active loan: only outstanding > 0 counts
        ids = {h["household_no"]: h["id"] for h in (await client.get("/households", headers=office,
                                                                       params={"area": v0})).json()["items"]}
        async with owner_sessionmaker() as s, s.begin():
            for no, outstanding in (("001", Decimal("5000.00")), ("004", Decimal("0.00"))):
                s.add(Loan(id=uuid.uuid4(), area_code=v0, township_code=county.townships[0],
                           household_id=uuid.UUID(ids[no]), product="household", purpose="livestock",
                           principal=Decimal("5000.00"), outstanding=outstanding, interest_rate=Decimal("0.0435"),
                           disbursed_on=date(2026, 1, 10), due_on=date(2026, 12, 31), status="current",
                           coop_code="C1"))
        assert await nos(has_active_loan="true") == ["001"]
        assert await nos(has_active_loan="false", sort="household_no") == ["002", "003", "004"]
        assert await nos(exit_year=2026) == []

    async def test_stats_counts_and_incidence(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=2, villages=1, population=7651)
        t0 = county.townships[0]
        v0 = county.villages[t0][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        rows = [
            row("001", v0, "王大", id_number()), row("001", v0, "王妻", id_number(sex="F"), "配偶"),
            row("002", v0, "赵二", id_number(), 主要致贫原因="因学"),
            row("003", v0, "孙三", id_number(), 贫困户属性="低保贫困户"),
            row("003", v0, "孙妻", id_number(sex="F"), "配偶", 贫困户属性="低保贫困户"),
        ]
        assert (await post_import(client, office, rows)).status_code == 201
        h3 = (await client.get("/households", headers=office, params={"q": "孙三"})).json()["items"][0]
        ok = dict.fromkeys(["food", "clothing", "education", "medical", "housing"], True)
        r = await client.post(f"/households/{h3['id']}/transitions", headers=office,
                              json={"to": "exited", "on": business_date().isoformat(), "year": 2026, "confirmations": ok})
        assert r.status_code == 201, r.text
        st = (await client.get("/stats/households", headers=office, params={"area": t0})).json()
        assert st["by_status"] == {"registered": 2, "exited": 1}
        assert st["by_category"] == {"general": 2, "dibao": 1}
        assert st["by_cause"] == {"illness": 2, "schooling": 1}
        # 3 poor persons (2 + 1) ÷ 7,651 villagers = 0.000392105… ; 0.0392…% → 0.04
        assert (st["poor_persons"], st["population"]) == (3, 7651)
        assert (st["incidence"], st["incidence_percent"]) == ("0.000392", "0.04")
        county_st = (await client.get("/stats/households", headers=office, params={"area": county.code})).json()
        assert county_st["population"] == 2 * 7651
        assert county_st["incidence"] == "0.000196"  # 3 / 15,302 = 0.00019605…
        assert (await client.get("/households", headers=office, params={"exit_year": 2026})).json()["items"][0]["id"] == h3["id"]

    async def test_rows_of_one_household_must_agree(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        rows = [row("001", v0, "王大", id_number()), row("001", v0, "王妻", id_number(sex="F"), "配偶", 人均纯收入="99")]
        r = await post_import(client, office, rows)
        assert [(e["row"], e["column"], e["code"]) for e in r.json()["extra"]["errors"]] == [
            (3, "人均纯收入", "import.household_inconsistent")]
        async with owner_sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Member).where(Member.area_code == v0)) == 0
