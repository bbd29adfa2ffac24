"""Audit trail, the RLS second wall, and ledger invariants enforced by the database itself."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from fupin.auth.roles import Role
from fupin.db import set_area_scope
from fupin.households.models import Household
from fupin.ledger import service as ledger
from fupin.ledger.models import JournalLine
from tests.factories import new_county, token_for


class TestAudit:
    async def test_a_write_through_the_api_records_who_what_before_after(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        village = county.villages[county.townships[0]][0]
        r = await client.patch(f"/areas/{village}", headers=hdr, json={"population": 7651})
        assert r.status_code == 200
        r = await client.get("/audit-log", headers=hdr, params={"entity": "area", "entity_id": village})
        events = r.json()["items"]
        assert events[0]["action"] == "area.update"
        assert events[0]["role"] == "county_admin"
        assert events[0]["before"]["population"] == 1000
        assert events[0]["after"]["population"] == 7651

    # Append-only rows, sealing and tamper evidence: tests/platform/test_audit_sealing.py


class TestRowLevelSecurity:
    async def test_unfiltered_query_as_app_role_sees_only_its_area(self, owner_sessionmaker, app_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=2)
        mine, other = county.townships
        async with owner_sessionmaker() as s, s.begin():
            for tcode in (mine, other):
                s.add(Household(
                    area_code=county.villages[tcode][0], household_no=f"H{uuid.uuid4().hex[:8]}", head_name="张三",
                    category="general", main_cause="因病", secondary_causes=[], status="registered",
                ))
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, mine[:9] + "%")
            # Deliberately no area filter: RLS is the only wall here.
            codes = (await s.scalars(select(Household.area_code).where(Household.area_code.like(county.code[:6] + "%")))).all()
        assert codes
        assert all(c.startswith(mine[:9]) for c in codes)

    async def test_unset_scope_sees_nothing(self, app_sessionmaker):
        async with app_sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Household)) == 0

    async def test_app_role_is_not_owner_and_tables_force_rls(self, owner_sessionmaker, test_settings):
        async with owner_sessionmaker() as s:
            row = (await s.execute(text(
                "SELECT relforcerowsecurity, pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'household'"
            ))).one()
            bypass = await s.scalar(text("SELECT rolbypassrls FROM pg_roles WHERE rolname = :r"),
                                    {"r": test_settings.db_app_role})
        assert row[0] is True
        assert row[1] != test_settings.db_app_role
        assert bypass is False


class TestLedgerInvariants:
    async def _accounts(self, sm):
        ref = uuid.uuid4().hex
        async with sm() as s, s.begin():
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            src = await ledger.ensure_account(s, holder_kind="source", holder_ref=ref, purpose="t",
                                              area_code="520000000000", allow_negative=True)
            dst = await ledger.ensure_account(s, holder_kind="fund", holder_ref=ref, purpose="t", area_code="520000000000")
        return src, dst

    async def test_transfer_moves_balances_and_check_passes(self, app_sessionmaker):
        src, dst = await self._accounts(app_sessionmaker)
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, "%")
            await ledger.transfer(s, source=src, target=dst, amount=Decimal("0.10"), kind="test",
                                  reference=f"t:{src.id}:1", effective_on=date(2026, 7, 1))
            await ledger.transfer(s, source=src, target=dst, amount=Decimal("0.20"), kind="test",
                                  reference=f"t:{src.id}:2", effective_on=date(2026, 7, 1))
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            assert (await s.get(type(dst), dst.id)).balance == Decimal("0.30")
            assert (await s.get(type(src), src.id)).balance == Decimal("-0.30")
            assert (await ledger.check(s)).ok

    async def test_same_reference_never_posts_twice(self, app_sessionmaker):
        src, dst = await self._accounts(app_sessionmaker)
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            await ledger.transfer(s, source=src, target=dst, amount=Decimal("1.00"), kind="test",
                                  reference=f"once:{src.id}", effective_on=date(2026, 7, 1))
        from fupin.errors import Conflict

        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            with pytest.raises(Conflict):
                await ledger.transfer(s, source=src, target=dst, amount=Decimal("1.00"), kind="test",
                                      reference=f"once:{src.id}", effective_on=date(2026, 7, 1))

    async def test_fund_account_cannot_go_negative(self, app_sessionmaker):
        src, dst = await self._accounts(app_sessionmaker)
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            with pytest.raises(DBAPIError, match="fund_not_negative"):
                await ledger.transfer(s, source=dst, target=src, amount=Decimal("0.01"), kind="test",
                                      reference=f"neg:{src.id}", effective_on=date(2026, 7, 1))

    async def test_database_refuses_unbalanced_entry_and_line_edits(self, app_sessionmaker):
        src, dst = await self._accounts(app_sessionmaker)
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            entry = await ledger.post(s, kind="test", reference=f"raw:{src.id}", effective_on=date(2026, 7, 1),
                                      lines=[ledger.Line(dst.id, debit=Decimal("1.00")),
                                             ledger.Line(src.id, credit=Decimal("1.00"))])
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            # lines go in only through the ledger's function, which refuses an unbalanced entry
            with pytest.raises(DBAPIError, match="permission denied"):
                await s.execute(text("INSERT INTO journal_line (entry_id, account_id, debit, credit) "
                                     "VALUES (:e, :a, 5, 0)"), {"e": entry.id, "a": dst.id})
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            with pytest.raises(DBAPIError, match="unbalanced"):
                await s.execute(text("SELECT fupin_ledger_post_lines(ARRAY[CAST(:e AS uuid)], ARRAY[CAST(:a AS uuid)], "
                                     "ARRAY[5.00], ARRAY[0.00])"), {"e": entry.id, "a": dst.id})
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            with pytest.raises(DBAPIError, match="permission denied"):
                await s.execute(text("UPDATE journal_line SET debit = 2"))
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            with pytest.raises(DBAPIError, match="permission denied"):
                await s.execute(text("DELETE FROM journal_line"))

    async def test_reversal_restores_balances(self, app_sessionmaker):
        src, dst = await self._accounts(app_sessionmaker)
        async with app_sessionmaker() as s, s.begin():
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            e = await ledger.transfer(s, source=src, target=dst, amount=Decimal("12.34"), kind="test",
                                      reference=f"rev:{src.id}", effective_on=date(2026, 7, 1))
            await ledger.reverse(s, entry_id=e.id, effective_on=date(2026, 7, 2), reason="keyed twice")
        async with app_sessionmaker() as s:
            await set_area_scope(s, "%")  # the ledger is area-scoped: the system actor's view
            assert (await s.get(type(dst), dst.id)).balance == Decimal("0.00")
            n = await s.scalar(select(func.count()).select_from(JournalLine).where(JournalLine.account_id == dst.id))
            assert n == 2
