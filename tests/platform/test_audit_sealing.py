"""Audit without a global lock: writers never wait for each other; the sealer chains committed rows per
county in one gap-free order and signs checkpoints; verify-audit finds every kind of tampering."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from fupin.audit import sealer
from fupin.audit import service as audit
from fupin.audit.models import AuditCheckpoint, AuditEvent
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.db import ALL_AREAS, set_area_scope
from tests.factories import new_county

KEY = "test-audit-key-" + "k" * 32


def _actor(area: str) -> Principal:
    return Principal(user_id=None, username="auditor-test", role=Role.county_admin, area_code=area)


async def _write(sm, area: str, n: int, *, tag: str = "t") -> None:
    async with sm() as s, s.begin():
        for i in range(n):
            await audit.record(s, _actor(area), action="test.write", entity="test", entity_id=f"{tag}-{i}",
                               after={"i": i, "amount": "0.10"})


async def _verify(sm, county: str) -> sealer.AuditReport:
    async with sm() as s, s.begin():
        await set_area_scope(s, ALL_AREAS)
        return await sealer.verify(s, key=KEY, county=county)


async def _sealed_county(owner_sessionmaker, rows: int = 30) -> str:
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    chain = county.code[:6]
    await _write(owner_sessionmaker, county.villages[county.townships[0]][0], rows)
    await sealer.seal_pending(owner_sessionmaker, key=KEY, counties=[chain])
    report = await _verify(owner_sessionmaker, chain)
    assert report.ok, report.problems
    return chain


async def _tamper(owner_sessionmaker, sql: str, **params: object) -> None:
    """As a superuser who switches the append-only triggers off — what the chain must still expose."""
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("SET LOCAL session_replication_role = replica"))
        await s.execute(text(sql), params)


class TestWritePath:
    async def test_a_writer_never_waits_for_another_writers_open_transaction(self, app_sessionmaker):
        area = "990101000000"  # a chain no test county uses
        async with app_sessionmaker() as held:
            await held.begin()
            await set_area_scope(held, ALL_AREAS)
            await audit.record(held, _actor(area), action="test.held", entity="test", entity_id="held")
            await held.flush()  # inserted, uncommitted: the first release held its chain lock from here to COMMIT

            async def other_writer() -> None:
                async with app_sessionmaker() as s, s.begin():
                    await set_area_scope(s, ALL_AREAS)
                    await audit.record(s, _actor(area), action="test.free", entity="test", entity_id="free")

            await asyncio.wait_for(other_writer(), timeout=60)  # would block forever behind a global lock
            await held.rollback()

    async def test_the_app_role_cannot_change_or_delete_audit_rows(self, owner_sessionmaker, app_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker, rows=2)
        for stmt in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event", "TRUNCATE audit_event",
                     "DELETE FROM audit_checkpoint", "UPDATE audit_checkpoint SET seq = 0"):
            async with app_sessionmaker() as s:
                await set_area_scope(s, ALL_AREAS)
                with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
                    await s.execute(text(stmt))
        # The seal columns it may fill in once, never rewrite.
        async with app_sessionmaker() as s:
            await set_area_scope(s, ALL_AREAS)
            with pytest.raises(DBAPIError, match="append-only"):
                await s.execute(text("UPDATE audit_event SET hash = repeat('f', 64) WHERE county_code = :c"),
                                {"c": chain})


class TestSealer:
    async def test_concurrent_writers_and_sealers_give_one_gap_free_order(self, owner_sessionmaker, app_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        chain, village = county.code[:6], county.villages[county.townships[0]][0]
        writers_done = asyncio.Event()

        async def writer(w: int) -> None:
            for batch in range(5):
                async with app_sessionmaker() as s, s.begin():
                    await set_area_scope(s, ALL_AREAS)
                    for i in range(5):
                        await audit.record(s, _actor(village), action="test.write", entity="test",
                                           entity_id=f"w{w}-{batch}-{i}")

        async def keep_sealing() -> int:
            rounds = 0
            while not writers_done.is_set():
                await sealer.seal_pending(app_sessionmaker, key=KEY, counties=[chain])
                rounds += 1
                await asyncio.sleep(0)
            return rounds

        sealing = [asyncio.create_task(keep_sealing()) for _ in range(2)]  # two sealers race each other too
        await asyncio.gather(*(writer(w) for w in range(20)))
        writers_done.set()
        await asyncio.gather(*sealing)
        await sealer.seal_pending(app_sessionmaker, key=KEY, counties=[chain])
        async with owner_sessionmaker() as s:
            seqs = (await s.scalars(select(AuditEvent.seq).where(AuditEvent.county_code == chain,
                                                                 AuditEvent.action == "test.write")
                                    .order_by(AuditEvent.seq))).all()
            total = await s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.county_code == chain))
            checkpoints = await s.scalar(select(func.count()).select_from(AuditCheckpoint)
                                         .where(AuditCheckpoint.county_code == chain))
        assert len(seqs) == 500
        assert None not in seqs
        assert len(set(seqs)) == 500
        all_seqs = await _all_seqs(owner_sessionmaker, chain)
        assert all_seqs == list(range(1, total + 1))  # gap-free across every row of the chain
        assert checkpoints >= 1
        report = await _verify(owner_sessionmaker, chain)
        assert report.ok, report.problems
        assert (report.rows, report.unsealed) == (total, report.unsealed)

    async def test_seal_lag_reports_unsealed_rows_and_their_age(self, owner_sessionmaker):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        chain = county.code[:6]
        await _write(owner_sessionmaker, county.code, 3)
        async with owner_sessionmaker() as s:
            n, age = await sealer.seal_lag(s, county=chain)
        assert n >= 3
        assert age is not None
        assert age >= 0
        await sealer.seal_pending(owner_sessionmaker, key=KEY, counties=[chain])
        async with owner_sessionmaker() as s:
            assert await sealer.seal_lag(s, county=chain) == (0, None)


async def _all_seqs(sm, chain: str) -> list[int]:
    async with sm() as s:
        return list((await s.scalars(select(AuditEvent.seq).where(AuditEvent.county_code == chain)
                                     .order_by(AuditEvent.seq))).all())


class TestTamperEvidence:
    async def test_an_edited_row_is_named(self, owner_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "UPDATE audit_event SET after = '{\"i\": 99}' "
                      "WHERE county_code = :c AND seq = 7", c=chain)
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert (report.problems[0].seq, report.problems[0].reason) == (7, "content does not match its hash: row edited")

    async def test_a_deleted_row_in_the_middle_is_named(self, owner_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "DELETE FROM audit_event WHERE county_code = :c AND seq = 12", c=chain)
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert report.problems[0].reason == "rows 12..12 are missing"

    async def test_deleting_the_newest_rows_after_a_checkpoint_is_detected(self, owner_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "DELETE FROM audit_event WHERE county_code = :c AND seq > 25", c=chain)
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert "no longer exists" in report.reason

    async def test_truncating_a_chain_is_detected(self, owner_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "DELETE FROM audit_event WHERE county_code = :c", c=chain)
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert "no longer exists" in report.reason

    async def test_a_consistently_rewritten_chain_fails_its_signed_checkpoint(self, owner_sessionmaker):
        """An attacker edits a row and recomputes every later hash (the algorithm is public, the key is not)."""
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "UPDATE audit_event SET after = '{\"i\": 99}' "
                      "WHERE county_code = :c AND seq = 3", c=chain)
        async with owner_sessionmaker() as s:
            rows = (await s.execute(select(*sealer._COLUMNS).where(AuditEvent.county_code == chain)
                                    .order_by(AuditEvent.seq))).all()
        prev = sealer.GENESIS
        for row in rows:
            digest = sealer.chain_hash(prev, row.seq, row)
            await _tamper(owner_sessionmaker, "UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :i",
                          p=prev, h=digest, i=row.id)
            prev = digest
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert all(p.reason.endswith("sealed rows were rewritten") for p in report.problems)

    async def test_a_forged_checkpoint_is_refused(self, owner_sessionmaker):
        chain = await _sealed_county(owner_sessionmaker)
        await _tamper(owner_sessionmaker, "INSERT INTO audit_checkpoint (county_code, seq, hash, signed_at, key_id, "
                      "signature) SELECT county_code, seq, hash, now(), key_id, repeat('a', 64) FROM audit_checkpoint "
                      "WHERE county_code = :c LIMIT 1", c=chain)
        report = await _verify(owner_sessionmaker, chain)
        assert not report.ok
        assert "has no valid signature" in report.reason


def test_verify_audit_command_reports_tampering_and_exit_code(test_settings):
    from fupin.cli import app
    from fupin.db import make_engine, make_sessionmaker

    async def arrange() -> str:
        engine = make_engine(test_settings.database_url, name="cli-audit-test", pool_size=1)
        sm = make_sessionmaker(engine)
        try:
            chain = await _sealed_county(sm, rows=5)
            await _tamper(sm, "DELETE FROM audit_event WHERE county_code = :c AND seq = 2", c=chain)
            return chain
        finally:
            await engine.dispose()

    from fupin.settings import get_settings

    env = {"FUPIN_AUDIT_CHECKPOINT_KEY": KEY}
    chain = asyncio.run(arrange())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["verify-audit", "--county", chain], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert result.output.startswith("BROKEN")
    assert f"chain {chain} position 2 (row id" in result.output
    assert "no valid signature" not in result.output  # the rows were checked with the right key
