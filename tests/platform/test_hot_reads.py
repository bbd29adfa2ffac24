"""The hot read path (`fupin.fastread`) answers exactly what the ORM path answers, keeps RLS and the
caller's scope, and trusts a cached token version only for `token_cache_seconds`."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import update

from fupin.areas import service as area_service
from fupin.areas.schemas import AreaRead
from fupin.auth.models import User
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.households import queries as household_queries
from fupin.households import service as household_service
from fupin.households.schemas import HouseholdSummary
from tests.factories import login, new_county, new_user, token_for
from tests.households.factories import household_body


async def _orm(sm, principal: Principal, fn):
    async with sm() as session, session.begin():
        return await fn(session, principal)


class TestSameJsonAsTheOrmPath:
    async def test_household_by_id_and_page(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        village = county.villages[county.townships[0]][0]
        for role in (Role.village_committee, Role.auditor):  # auditors see ID numbers masked
            hdr = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village)
            created = [(await client.post("/households", headers=hdr, json=household_body(village))).json()
                       for _ in range(3)]
            reader = await token_for(owner_sessionmaker, test_settings, role=role, area_code=village)
            me = Principal(user_id=uuid.uuid4(), username="t", role=role, area_code=village)
            for h in created:
                hot = await client.get(f"/households/{h['id']}", headers=reader)
                assert hot.status_code == 200
                orm = await _orm(owner_sessionmaker, me, lambda s, p, i=h["id"]: household_service.read_household(
                    s, principal=p, household_id=uuid.UUID(i)))
                assert hot.json() == json.loads(orm.model_dump_json())
            hot = await client.get("/households", headers=reader, params={"area": village, "limit": 2})
            rows, nxt = await _orm(owner_sessionmaker, me, lambda s, p: household_queries.list_households(
                s, principal=p, filters=household_queries.Filters(area=village), sort="created_at", cursor=None,
                limit=2))
            orm_page = {"items": [json.loads(HouseholdSummary.model_validate(r).model_dump_json()) for r in rows],
                        "next_cursor": nxt}
            assert hot.json() == orm_page
            follow = await client.get("/households", headers=reader,
                                      params={"area": village, "limit": 2, "cursor": nxt})
            assert [i["id"] for i in hot.json()["items"] + follow.json()["items"]][:3] == [
                i["id"] for i in (await client.get("/households", headers=reader,
                                                   params={"area": village, "limit": 3})).json()["items"]]

    async def test_area_by_code_and_page(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=2, villages=2)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        me = Principal(user_id=uuid.uuid4(), username="t", role=Role.county_admin, area_code=county.code)
        for code in [county.code, *county.townships]:
            hot = (await client.get(f"/areas/{code}", headers=hdr)).json()
            orm = await _orm(owner_sessionmaker, me, lambda s, p, c=code: area_service.get_area(s, principal=p, code=c))
            assert hot == json.loads(AreaRead.model_validate(orm).model_dump_json())
        hot = (await client.get("/areas", headers=hdr, params={"level": "village", "limit": 3})).json()
        orm = await _orm(owner_sessionmaker, me, lambda s, p: area_service.list_areas(
            s, principal=p, parent=None, level="village", limit=3, after=None))
        assert hot["items"] == [json.loads(AreaRead.model_validate(a).model_dump_json()) for a in orm]
        assert hot["next_cursor"] == orm[-1].code


    async def test_loan_by_id_with_its_repayments(self, client, owner_sessionmaker, test_settings):
        from datetime import date

        from fupin.calendar import business_date
        from fupin.loans import queries as loan_queries
        from fupin.loans.schemas import LoanDetail, LoanRead, RepaymentRead
        from tests.assessment.factories import make_loan

        county = await new_county(owner_sessionmaker, townships=2, villages=1)
        mine, other = (county.villages[t][0] for t in county.townships)
        today = business_date()
        loans = [
            await make_loan(owner_sessionmaker, village=mine, principal="10000.00", due_on=date(today.year + 1, 3, 1),
                            repayments=[("2500.00", date(today.year, 1, 5)), ("1000.50", date(today.year - 1, 12, 1))]),
            await make_loan(owner_sessionmaker, village=mine, principal="5000.00", due_on=date(today.year - 1, 6, 1)),
        ]  # the second is current, past due and owed: shown as overdue
        theirs = await make_loan(owner_sessionmaker, village=other, principal="1.00", due_on=date(today.year, 1, 1))
        township = county.townships[0]
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
        me = Principal(user_id=uuid.uuid4(), username="t", role=Role.township_station, area_code=township)
        for loan_id in loans:
            hot = await client.get(f"/loans/{loan_id}", headers=hdr)
            assert hot.status_code == 200
            loan, reps = await _orm(owner_sessionmaker, me, lambda s, p, i=loan_id: loan_queries.get_loan(
                s, principal=p, loan_id=i))
            base = LoanRead.model_validate(loan).model_dump()
            base["status"] = loan_queries.display_status(loan, today)
            orm = LoanDetail(**base, repayments=[RepaymentRead.model_validate(r) for r in reps])
            assert hot.json() == json.loads(orm.model_dump_json())
        assert [r["amount"] for r in (await client.get(f"/loans/{loans[0]}", headers=hdr)).json()["repayments"]] == [
            "1000.50", "2500.00"]
        assert (await client.get(f"/loans/{loans[1]}", headers=hdr)).json()["status"] == "overdue"
        assert (await client.get(f"/loans/{theirs}", headers=hdr)).status_code == 404


class TestScopeOnTheHotPath:
    async def test_another_areas_household_is_404_and_rls_hides_it(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=2, villages=1)
        mine, other = (county.villages[t][0] for t in county.townships)
        writer = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=other)
        theirs = (await client.post("/households", headers=writer, json=household_body(other))).json()["id"]
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=mine)
        assert (await client.get(f"/households/{theirs}", headers=hdr)).status_code == 404
        assert (await client.get("/households", headers=hdr, params={"area": other})).status_code == 404
        listed = (await client.get("/households", headers=hdr, params={"limit": 500})).json()["items"]
        assert theirs not in {h["id"] for h in listed}

    async def test_scope_pattern_spliced_into_set_local_is_validated(self):
        from fupin.areas.scope import checked_pattern

        assert checked_pattern("520123%") == "520123%"
        for bad in ("5201'%", "%; DROP TABLE x", "52%%", "abc%"):
            with pytest.raises(ValueError):
                checked_pattern(bad)


class TestTokenCache:
    async def test_revocation_elsewhere_takes_effect_within_the_delay(self, app, client, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        username = await new_user(owner_sessionmaker, role=Role.auditor, area_code=county.code)
        token = (await login(client, username)).json()["access_token"]
        hdr = {"Authorization": f"Bearer {token}"}
        cache = app.state.auth_cache
        now = [1000.0]
        clock, ttl = cache.clock, cache.ttl
        cache.clock, cache.ttl = (lambda: now[0]), 5.0
        try:
            assert (await client.get(f"/areas/{county.code}", headers=hdr)).status_code == 200
            # another API process deactivates the user: this process learns it from the database
            async with owner_sessionmaker() as s, s.begin():
                await s.execute(update(User).where(User.username == username)
                                .values(active=False, token_version=User.token_version + 1))
            now[0] += 4.9
            assert (await client.get(f"/areas/{county.code}", headers=hdr)).status_code == 200
            now[0] += 0.2
            assert (await client.get(f"/areas/{county.code}", headers=hdr)).status_code == 401
            assert (await client.get("/areas", headers=hdr)).status_code == 401
        finally:
            cache.clock, cache.ttl = clock, ttl

    async def test_a_zero_delay_reads_the_user_on_every_request(self):
        from fupin.auth.cache import AuthCache, UserAuth

        cache = AuthCache(0)
        cache.put(uuid.uuid4(), UserAuth("u", "auditor", "520000000000", True, 0))
        assert cache._rows == {}
