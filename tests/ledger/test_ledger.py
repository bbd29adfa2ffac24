"""The ledger core through its service and API: balanced postings, reversals, the check, scoping."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from fupin.auth.roles import Role
from fupin.errors import Conflict, RuleViolation
from fupin.ledger import service as ledger
from fupin.ledger.service import Line
from tests.factories import new_county, token_for

D = Decimal


async def accounts(sm, county):
    town = county.townships[0]
    async with sm() as s, s.begin():
        src = await ledger.ensure_account(s, holder_kind="source", holder_ref=county.code, purpose="test",
                                          area_code=county.code, allow_negative=True)
        a = await ledger.ensure_account(s, holder_kind="township_finance", holder_ref=town, purpose="test",
                                        area_code=town)
        b = await ledger.ensure_account(s, holder_kind="credit_coop", holder_ref=town + ".X", purpose="test",
                                        area_code=town)
    return src, a, b


async def test_three_line_entry_posts_and_moves_balances(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    src, a, b = await accounts(owner_sessionmaker, county)
    async with owner_sessionmaker() as s, s.begin():
        await ledger.post(s, kind="test", reference=f"t3:{county.code}", effective_on=date(2026, 7, 1), lines=[
            Line(src.id, credit=D("100.00")), Line(a.id, debit=D("60.00")), Line(b.id, debit=D("40.00"))])
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.township_finance, area_code=county.townships[0])
    r = await client.get(f"/ledger/accounts/{a.id}", headers=hdr)
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == "60.00"
    assert [(e["debit"], e["credit"]) for e in r.json()["entries"]] == [("60.00", "0.00")]
    codes = {x["code"] for x in (await client.get("/ledger/accounts?purpose=test", headers=hdr)).json()["items"]}
    assert codes == {a.code, b.code}  # the county's source account is outside a township's scope
    assert (await client.get(f"/ledger/accounts/{src.id}", headers=hdr)).status_code == 404
    aud = await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=county.code)
    assert (await client.get("/ledger/check", headers=aud)).json()["ok"] is True


async def test_reverse_restores_and_duplicates_and_overdrafts_are_refused(owner_sessionmaker):
    county = await new_county(owner_sessionmaker)
    src, a, b = await accounts(owner_sessionmaker, county)
    ref = f"rv:{county.code}"
    async with owner_sessionmaker() as s, s.begin():
        entry = await ledger.transfer(s, source=src, target=a, amount=D("10.00"), kind="test", reference=ref,
                                      effective_on=date(2026, 7, 1))
    async with owner_sessionmaker() as s, s.begin():
        with pytest.raises(Conflict):
            await ledger.transfer(s, source=src, target=a, amount=D("10.00"), kind="test", reference=ref,
                                  effective_on=date(2026, 7, 1))
    async with owner_sessionmaker() as s, s.begin():
        with pytest.raises(RuleViolation):
            await ledger.post(s, kind="test", reference=ref + ":bad", effective_on=date(2026, 7, 1),
                              lines=[Line(a.id, debit=D("1.00")), Line(b.id, credit=D("2.00"))])
    with pytest.raises(DBAPIError):  # a fund may not go below zero
        async with owner_sessionmaker() as s, s.begin():
            await ledger.transfer(s, source=b, target=a, amount=D("0.01"), kind="test", reference=ref + ":od",
                                  effective_on=date(2026, 7, 1))
    async with owner_sessionmaker() as s, s.begin():
        await ledger.reverse(s, entry_id=entry.id, effective_on=date(2026, 7, 2), reason="test")
    async with owner_sessionmaker() as s:
        assert (await s.get(type(a), a.id)).balance == D("0.00")
        assert (await ledger.check(s)).ok


async def test_database_refuses_an_unbalanced_entry_even_past_the_service(owner_sessionmaker):
    import uuid

    from sqlalchemy import text

    from fupin.ledger.models import JournalEntry

    county = await new_county(owner_sessionmaker)
    src, a, _ = await accounts(owner_sessionmaker, county)
    async with owner_sessionmaker() as s, s.begin():
        entry = JournalEntry(id=uuid.uuid4(), kind="test", reference=f"raw:{county.code}",
                             effective_on=date(2026, 7, 1), description="", created_by="t", area_code=county.code)
        s.add(entry)
        await s.flush()
        # the database function every posting goes through, called with lines the service would refuse
        unbalanced = text("SELECT fupin_ledger_post_lines(CAST(:e AS uuid[]), CAST(:a AS uuid[]), "
                          "CAST(:d AS numeric[]), CAST(:c AS numeric[]))")
        with pytest.raises(DBAPIError, match="unbalanced"):
            await s.execute(unbalanced, {"e": [entry.id, entry.id], "a": [src.id, a.id],
                                         "d": [D("0"), D("4.99")], "c": [D("5.00"), D("0")]})
        await s.rollback()


async def test_bulk_posting_checks_each_entry_from_its_own_new_lines(owner_sessionmaker):
    import uuid

    from fupin.ledger.models import JournalEntry

    county = await new_county(owner_sessionmaker)
    src, a, b = await accounts(owner_sessionmaker, county)
    lines = ("SELECT CAST(:e AS uuid) AS entry_id, CAST(:to AS uuid) AS account_id, CAST(:amt AS numeric(14,2)) AS debit,"
             " CAST(0 AS numeric(14,2)) AS credit "
             "UNION ALL SELECT CAST(:e AS uuid), CAST(:src AS uuid), CAST(0 AS numeric(14,2)), CAST(:back AS numeric(14,2))")
    async with owner_sessionmaker() as s, s.begin():
        entry = JournalEntry(id=uuid.uuid4(), kind="test", reference=f"bulk:{county.code}",
                             effective_on=date(2026, 7, 1), description="", created_by="t", area_code=county.code)
        s.add(entry)
        await s.flush()
        with pytest.raises(DBAPIError, match="unbalanced"):
            async with s.begin_nested():
                await ledger.post_lines_from(s, lines, {"e": entry.id, "to": a.id, "src": src.id, "amt": D("3.00"),
                                                        "back": D("2.99")})
        assert await ledger.post_lines_from(s, lines, {"e": entry.id, "to": b.id, "src": src.id, "amt": D("3.00"),
                                                       "back": D("3.00")}) == 2
    async with owner_sessionmaker() as s:
        assert (await s.get(type(a), a.id)).balance == D("0.00")
        assert (await s.get(type(b), b.id)).balance == D("3.00")
        assert (await ledger.check(s)).ok


async def test_post_many_posts_every_entry_in_three_statements_or_none(owner_sessionmaker):
    from sqlalchemy import event

    county = await new_county(owner_sessionmaker)
    src, a, b = await accounts(owner_sessionmaker, county)
    day = date(2026, 7, 1)

    def posting(ref: str, to, amount: str, back: str | None = None) -> ledger.Posting:
        return ledger.Posting(kind="test", reference=f"many:{county.code}:{ref}", effective_on=day,
                              lines=[Line(to.id, debit=D(amount)), Line(src.id, credit=D(back or amount))])

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    async with owner_sessionmaker() as s, s.begin():
        event.listen(s.bind.sync_engine, "before_cursor_execute", count)
        try:
            ids = await ledger.post_many(s, [posting(str(i), a if i % 2 else b, "1.25") for i in range(40)])
        finally:
            event.remove(s.bind.sync_engine, "before_cursor_execute", count)
    assert len(ids) == 40
    assert len(set(ids)) == 40
    assert len(statements) == 3  # references taken, the headers, the lines — not 40 × anything
    async with owner_sessionmaker() as s:
        assert (await s.get(type(a), a.id)).balance == D("25.00")
        assert (await s.get(type(b), b.id)).balance == D("25.00")
        # each entry's area is the smallest area holding its accounts (county source + township account)
        from fupin.ledger.models import JournalEntry
        areas = set((await s.scalars(select(JournalEntry.area_code).where(JournalEntry.id.in_(ids)))).all())
        assert areas == {county.code}
    # one bad entry refuses the whole batch: unbalanced, a reference posted before, a reference twice
    for batch, error in (
        ([posting("x1", a, "1.00"), posting("x2", a, "1.00", back="0.99")], RuleViolation),
        ([posting("x3", a, "1.00"), posting("7", a, "1.00")], Conflict),
        ([posting("x4", a, "1.00"), posting("x4", b, "1.00")], Conflict),
    ):
        async with owner_sessionmaker() as s, s.begin():
            with pytest.raises(error):
                await ledger.post_many(s, batch)
    async with owner_sessionmaker() as s:
        assert (await s.get(type(a), a.id)).balance == D("25.00")
        assert (await ledger.check(s)).ok


async def test_ensure_accounts_opens_many_at_once_and_returns_existing_ones_unchanged(owner_sessionmaker):
    county = await new_county(owner_sessionmaker)
    src, a, _ = await accounts(owner_sessionmaker, county)
    town = county.townships[0]
    specs = [ledger.AccountSpec("township_finance", town, "test", town),  # exists (balance kept)
             *(ledger.AccountSpec("household", f"{town}-{i}", "test", county.villages[town][0]) for i in range(5))]
    async with owner_sessionmaker() as s, s.begin():
        await ledger.transfer(s, source=src, target=a, amount=D("7.00"), kind="test", reference=f"ea:{county.code}",
                              effective_on=date(2026, 7, 1))
    async with owner_sessionmaker() as s, s.begin():
        found = await ledger.ensure_accounts(s, specs, lock=True)
        again = await ledger.ensure_accounts(s, specs)
    assert set(found) == {sp.code for sp in specs} == set(again)
    assert found[a.code].id == a.id
    assert found[a.code].balance == D("7.00")
    assert {found[sp.code].balance for sp in specs[1:]} == {D("0.00")}
    assert {found[sp.code].allow_negative for sp in specs} == {False}
