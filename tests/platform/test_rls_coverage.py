"""Row-level security on every table (issue 18): a table the app can reach is either RLS-forced with a
policy or named in EXEMPT with its reason; as the app role another county's rows are invisible and not
updatable; bank secrets are ciphertext in the database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fupin import secretbox
from fupin.auth.roles import Role
from fupin.db import set_area_scope
from fupin.ledger import service as ledger
from fupin.migrate import downgrade, upgrade
from fupin.settings import InsecureSettings, get_settings
from tests.factories import login, new_county, new_user
from tests.loans.factories import make_bank

# Tables without row-level security, each with the reason it needs none. Anything else in the schema
# must be RLS-forced: a new table fails `test_every_table_is_rls_forced_or_exempt` until it is one or the other.
EXEMPT = {
    "alembic_version": "Alembic's revision marker: no rows of anyone, written only by migrations (owner).",
    "area": "The area directory: codes, names, levels and the tree are public administrative data every "
            "caller resolves (scope checks read it); writes go through area admins' scoped service calls.",
    "loan_holiday": "The national statutory holiday calendar: the same for every area, no area column.",
    "loan_holiday_year": "Which years of the national holiday calendar are loaded: no area, no personal data.",
}

# Area-owned rows made for county A in `two_counties`, by table: the WHERE that finds them and, where
# the app role may UPDATE the table at all, a harmless SET to try.
TABLES = {
    "ledger_account": ("area_code LIKE :a", "name = name"),
    "journal_entry": ("area_code LIKE :a", None),  # append-only: no UPDATE grant at all
    "journal_line": ("area_code LIKE :a", None),
    "app_user": ("area_code LIKE :a", "full_name = 'x'"),
    "bank_client": ("area_code LIKE :a", "active = false"),
    "bank_client_secret": ("area_code LIKE :a", "valid_until = now()"),
    "loan_township_readiness": ("area_code LIKE :a", "ready = true"),
    "subsidy_policy": ("area_code LIKE :a", "note = 'x'"),
    "loan_product_rule": ("county_code LIKE :a", "max_term_months = 1"),
    "project_setting": ("area_code LIKE :a", "effective_to = NULL"),
    "refresh_session": ("area_code LIKE :a", "revoked_reason = 'x'"),
}


async def test_every_table_is_rls_forced_or_exempt(owner_sessionmaker):
    async with owner_sessionmaker() as s:
        rows = (await s.execute(text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        ))).all()
    tables = {r[0] for r in rows}
    assert len(tables) > 60
    uncovered = [r[0] for r in rows if r[0] not in EXEMPT and not (r[1] and r[2] and r[3] > 0)]
    assert uncovered == [], f"neither RLS-forced with a policy nor exempted: {uncovered}"
    assert set(EXEMPT) <= tables, f"stale exemptions: {set(EXEMPT) - tables}"
    assert set(TABLES) <= tables


@pytest.fixture
async def two_counties(owner_sessionmaker, app_sessionmaker):
    a, b = await new_county(owner_sessionmaker), await new_county(owner_sessionmaker)
    township = a.townships[0]
    await new_user(owner_sessionmaker, role=Role.village_committee, area_code=a.villages[township][0])
    await make_bank(owner_sessionmaker, township)
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("INSERT INTO loan_township_readiness (area_code, county, ready, note) VALUES (CAST(:t AS varchar), left(CAST(:t AS varchar), 6), false, '')"),
                        {"t": township})
        await s.execute(text(
            "INSERT INTO subsidy_policy (id, area_code, effective_from, rate, day_count, productive_only, rounding, "
            "note, created_by) VALUES (gen_random_uuid(), :c, '2026-01-01', 0.0258, 'actual/365', true, 'x', '', 't')"
        ), {"c": a.code})
        await s.execute(text(
            "INSERT INTO loan_product_rule (id, county_code, product, per_member, max_term_months, effective_from) "
            "VALUES (gen_random_uuid(), :c, 'household', false, 36, '2026-01-01')"), {"c": a.code})
        await s.execute(text(
            "INSERT INTO project_setting (id, area_code, effective_from) VALUES (gen_random_uuid(), :c, '2026-01-01')"
        ), {"c": a.code})
        await s.execute(text(
            "INSERT INTO refresh_session (id, user_id, area_code, token_hash, generation, token_version, created_at, "
            "expires_at) SELECT gen_random_uuid(), id, area_code, repeat('0', 64), 0, 0, now(), now() + interval '1 day' "
            "FROM app_user WHERE area_code LIKE :a"), {"a": a.code[:6] + "%"})
    # Ledger rows through the ledger itself, as the app role with the system scope.
    async with app_sessionmaker() as s, s.begin():
        await set_area_scope(s, "%")
        src = await ledger.ensure_account(s, holder_kind="source", holder_ref=a.code, purpose=uuid.uuid4().hex[:8],
                                          area_code=a.code, allow_negative=True)
        dst = await ledger.ensure_account(s, holder_kind="township_finance", holder_ref=township,
                                          purpose=uuid.uuid4().hex[:8], area_code=township)
        await ledger.transfer(s, source=src, target=dst, amount=Decimal("5.00"), kind="test",
                              reference=f"rls:{dst.id}", effective_on=date(2026, 7, 1))
    return a, b


async def _count(s, table: str, where: str, a: str) -> int:
    return int(await s.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}"), {"a": a}) or 0)


async def _as(s, scope: str, user_scope: str = "") -> None:
    await s.execute(text("SELECT set_config('fupin.scope', :s, true), set_config('fupin.user_scope', :u, true)"),
                    {"s": scope, "u": user_scope})


async def test_rows_of_one_county_are_invisible_and_not_updatable_from_another(two_counties, app_sessionmaker):
    a, b = two_counties
    mine = a.code[:6] + "%"
    # With A's own scope every row is there, so the zeros below are the policies' doing.
    async with app_sessionmaker() as s, s.begin():
        await _as(s, mine, user_scope=mine)
        for table, (where, _) in TABLES.items():
            assert await _count(s, table, where, mine) >= 1, table
    for scope in (b.code[:6] + "%", "", None):
        async with app_sessionmaker() as s, s.begin():
            if scope is not None:
                await _as(s, scope, user_scope=scope)
            for table, (where, change) in TABLES.items():
                assert await _count(s, table, where, mine) == 0, (table, scope)
                if change is not None:
                    done = await s.execute(text(f"UPDATE {table} SET {change} WHERE {where}"), {"a": mine})
                    assert done.rowcount == 0, (table, scope)


async def test_users_are_visible_to_user_administrators_only_and_login_still_works(
    client, owner_sessionmaker, app_sessionmaker, test_settings
):
    county = await new_county(owner_sessionmaker)
    username = await new_user(owner_sessionmaker, role=Role.cadre, area_code=county.villages[county.townships[0]][0])
    mine = county.code[:6] + "%"
    async with app_sessionmaker() as s, s.begin():
        await _as(s, mine)  # a non-administrator of the county: its area's rows, but no users
        assert await _count(s, "app_user", "area_code LIKE :a", mine) == 0
        await _as(s, mine, user_scope=mine)  # a county admin or auditor
        assert await _count(s, "app_user", "area_code LIKE :a", mine) == 1
    # Login reads and updates the named row only; its token then passes (fupin_user_auth).
    r = await login(client, username)
    assert r.status_code == 200, r.text
    village = county.villages[county.townships[0]][0]
    assert (await client.get(f"/areas/{village}", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            ).status_code == 200
    assert (await login(client, username, "wrong-password")).status_code == 401
    async with owner_sessionmaker() as s:
        assert await s.scalar(text("SELECT failed_logins FROM app_user WHERE username = :u"), {"u": username}) == 1
    # Through the API: a county admin lists its county's users (its transaction has the user scope).
    from tests.factories import token_for

    admin = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    names = [u["username"] for u in (await client.get("/users", headers=admin)).json()["items"]]
    assert username in names


async def test_a_township_sees_its_county_accounts_but_not_a_sibling_townships(two_counties, app_sessionmaker):
    a, _ = two_counties
    mine, sibling = a.townships
    async with app_sessionmaker() as s, s.begin():
        await _as(s, sibling[:9] + "%")
        visible = set((await s.scalars(text(
            "SELECT area_code FROM ledger_account WHERE area_code LIKE :c"), {"c": a.code[:6] + "%"})).all())
        lines = await _count(s, "journal_line", "area_code = :a", mine)
    assert visible == {a.code}  # the county's appropriation, which a township allocates from
    assert lines == 0


async def test_bank_secrets_are_ciphertext_in_the_database(owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    bank = await make_bank(owner_sessionmaker, county.townships[0])
    async with owner_sessionmaker() as s:
        stored = await s.scalar(text("SELECT secret FROM bank_client_secret WHERE client_id = :c"),
                                {"c": bank.client_id})
    assert stored.startswith("v1:")
    assert bank.secret not in stored
    assert secretbox.unseal(stored, client_id=bank.client_id, key=test_settings.bank_secret_key) == bank.secret
    with pytest.raises(secretbox.SecretUnreadable):
        secretbox.unseal(stored, client_id=bank.client_id, key="another-key-" + "x" * 32)
    with pytest.raises(secretbox.SecretUnreadable):  # bound to its client: copied to another row, it does not open
        secretbox.unseal(stored, client_id="someone-else", key=test_settings.bank_secret_key)


@contextmanager
def production_env() -> Iterator[None]:
    saved = os.environ.get("FUPIN_ENVIRONMENT")
    os.environ["FUPIN_ENVIRONMENT"] = "production"
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ["FUPIN_ENVIRONMENT"] = saved or "test"
        get_settings.cache_clear()


async def test_the_migration_encrypts_existing_secrets_and_its_downgrade_decrypts_them(test_settings):
    import asyncio

    name = f"fupin_mig_{uuid.uuid4().hex[:8]}"
    admin = make_url(test_settings.database_url).set(database="postgres").render_as_string(hide_password=False)
    url = make_url(test_settings.database_url).set(database=name).render_as_string(hide_password=False)

    async def sql(target: str, statement: str, autocommit: bool = False) -> list[tuple[str, ...]]:
        engine = create_async_engine(target, isolation_level="AUTOCOMMIT") if autocommit else create_async_engine(target)
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            rows = [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    from alembic.script import ScriptDirectory

    from fupin.migrate import alembic_config

    before = ScriptDirectory.from_config(alembic_config(url)).get_revision("trusta0100").down_revision
    assert isinstance(before, str)
    await sql(admin, f'CREATE DATABASE "{name}"', autocommit=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, upgrade, url, before)
        await sql(url, "INSERT INTO bank_client (client_id, institution_code, area_code, active) "
                       "VALUES ('old-client', 'RCC', '520111100000', true)")
        await sql(url, "INSERT INTO bank_client_secret (id, client_id, secret) "
                       "VALUES (gen_random_uuid(), 'old-client', 'clear-secret')")
        # In production, real secrets are not encrypted under the public default key: the revision fails
        # whole (transactional DDL) and leaves the rows as they were.
        with production_env(), pytest.raises(InsecureSettings, match="FUPIN_BANK_SECRET_KEY is the built-in default"):
            await loop.run_in_executor(None, upgrade, url, "trusta0100")
        assert await sql(url, "SELECT secret FROM bank_client_secret") == [("clear-secret",)]
        await loop.run_in_executor(None, upgrade, url, "trusta0100")
        (stored, area), = await sql(url, "SELECT secret, area_code FROM bank_client_secret")
        assert stored != "clear-secret"
        assert area == "520111100000"
        assert secretbox.unseal(stored, client_id="old-client", key=test_settings.bank_secret_key) == "clear-secret"
        await loop.run_in_executor(None, downgrade, url, before)
        assert await sql(url, "SELECT secret FROM bank_client_secret") == [("clear-secret",)]
    finally:
        await sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


def test_the_readme_names_every_exemption_and_no_other():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    access = readme.split("## Access", 1)[1].split("\n## ", 1)[0]
    assert f"except {['zero', 'one', 'two', 'three', 'four', 'five'][len(EXEMPT)]}" in access
    for table in EXEMPT:
        assert f"`{table}`" in access, table
