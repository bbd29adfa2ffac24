"""Every project write leaves one audit row."""

from __future__ import annotations

from sqlalchemy import select

from fupin.auth.roles import Role
from tests.factories import new_county, token_for
from tests.projects.factories import create_project


class TestAudit:
    async def test_each_project_write_leaves_one_audit_row(self, client, owner_sessionmaker, test_settings):
        from fupin.audit.models import AuditEvent

        county = await new_county(owner_sessionmaker)
        t1 = county.townships[0]
        station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=t1)
        p = await create_project(client, station, t1)
        r = await client.post(f"/projects/{p['id']}/transitions", headers=station, json={"to": "in_library"})
        assert r.status_code == 201
        async with owner_sessionmaker() as session:
            actions = (await session.scalars(
                select(AuditEvent.action).where(AuditEvent.entity_id == p["id"]).order_by(AuditEvent.id)
            )).all()
        assert actions == ["project.create", "project.transition"]
