"""The RLS second wall on project tables."""

from __future__ import annotations

from sqlalchemy import func, select, text

from fupin.auth.roles import Role
from fupin.projects.models import Project, ProjectBudget
from tests.factories import new_county, token_for
from tests.projects.factories import create_project


class TestRowLevelSecurity:
    async def test_app_role_sees_no_project_rows_of_another_township(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings
    ):
        county = await new_county(owner_sessionmaker)
        t1, t2 = county.townships
        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t1)
        p = await create_project(client, station, t1)
        async with app_sessionmaker() as session, session.begin():
            await session.execute(text("SELECT set_config('fupin.scope', :s, true)"), {"s": t2[:9] + "%"})
            # no app-level filter here: only RLS stands between this query and township 1's rows
            assert await session.scalar(select(func.count()).select_from(Project).where(Project.area_code == t1)) == 0
            assert await session.scalar(
                select(func.count()).select_from(ProjectBudget).where(ProjectBudget.project_id == p["id"])
            ) == 0
        async with app_sessionmaker() as session, session.begin():
            await session.execute(text("SELECT set_config('fupin.scope', :s, true)"), {"s": t1[:9] + "%"})
            assert await session.scalar(select(func.count()).select_from(ProjectBudget).where(
                ProjectBudget.project_id == p["id"])) == 5
