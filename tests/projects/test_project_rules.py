"""Project rules: the status steps a project may take, and the household benefit cap by its effective dates."""

from __future__ import annotations

import pytest

from fupin.auth.roles import Role
from fupin.projects.rules import MAIN_LINE, may_move
from fupin.projects.schemas import Status
from tests.factories import new_county, token_for
from tests.projects.factories import create_project, make_household


class TestMayMove:
    @pytest.mark.parametrize("i", range(len(MAIN_LINE) - 1))
    def test_only_the_next_step_on_the_main_line(self, i):
        current = MAIN_LINE[i]
        for j, to in enumerate(MAIN_LINE):
            assert may_move(current, to, None) is (j == i + 1)

    def test_suspend_cancel_and_resume(self):
        assert may_move(Status.in_progress, Status.suspended, None)
        assert may_move(Status.proposed, Status.cancelled, None)
        assert may_move(Status.suspended, Status.in_progress, Status.in_progress)
        assert not may_move(Status.suspended, Status.completed, Status.in_progress)
        assert may_move(Status.suspended, Status.cancelled, Status.in_progress)
        assert not may_move(Status.suspended, Status.suspended, Status.in_progress)
        for terminal in (Status.closed, Status.cancelled):
            assert not any(may_move(terminal, to, None) for to in Status)


class TestCapEffectiveDates:
    async def test_cap_not_yet_or_no_longer_in_force_is_not_applied(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        t1 = county.townships[0]
        admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        hid = await make_household(owner_sessionmaker, village=county.villages[t1][0])
        for period in ({"effective_from": "2090-01-01"}, {"effective_from": "2020-01-01", "effective_to": "2021-01-01"}):
            r = await client.post("/project-settings", headers=admin, json={
                "county_code": county.code, "household_benefit_cap": "3000.00", **period})
            assert r.status_code == 201, r.text
        p = await create_project(client, admin, t1, kind="产业")
        r = await client.post(f"/projects/{p['id']}/beneficiaries", headers=admin, json={
            "households": [{"household_id": str(hid), "kind": "cash", "amount": "5000.00"}]})
        assert r.status_code == 201, r.text

    async def test_only_county_level_users_set_the_cap(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=county.townships[0])
        r = await client.post("/project-settings", headers=station, json={
            "county_code": county.code, "household_benefit_cap": "3000.00", "effective_from": "2020-01-01"})
        assert r.status_code == 403
