"""The single-repayment fast path (`fupin.loans.bank_fast`): four statements on a raw connection and none
through the ORM, committed before the answer (a commit that fails answers no 2xx and leaves nothing), and
the per-process cache of bank credentials. Its answers equal the session path's over random event streams:
tests/loans/test_bank_equivalence.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text

from fupin.audit.models import AuditEvent
from fupin.loans.models import BankLoanEvent, Loan, LoanRepayment
from tests.loans.factories import make_bank, post_events
from tests.loans.test_bank import approved, disb, rep

FAILING_AMOUNT = "7.77"


class _Statements:
    """Every statement the API process sends: on raw asyncpg connections (by method) and through SQLAlchemy."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: Any) -> None:
        self.raw: list[tuple[str, str]] = []
        self.orm: list[str] = []
        for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
            original = getattr(asyncpg.Connection, name)

            def counting(conn: Any, query: str, *args: Any, _name: str = name, _original: Any = original,
                         **kwargs: Any) -> Any:
                self.raw.append((_name, " ".join(query.split())))
                return _original(conn, query, *args, **kwargs)

            monkeypatch.setattr(asyncpg.Connection, name, counting)
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._on_orm)

    def _on_orm(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.orm.append(statement)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_orm)


async def _disbursed(client, owner_sessionmaker, world):
    bank = await make_bank(owner_sessionmaker, world.township)
    app_id = await approved(client, owner_sessionmaker, world)
    r = await post_events(client, bank, disb(app_id))
    assert r.status_code == 200, r.text
    return bank, app_id, r.json()["results"][0]["loan_id"]


async def test_a_single_repayment_is_four_statements_none_through_the_orm(
    app, client, owner_sessionmaker, world, monkeypatch
):
    bank, app_id, loan_id = await _disbursed(client, owner_sessionmaker, world)
    assert (await post_events(client, bank, rep(app_id, "warm", "1.00"))).status_code == 200  # credentials cached
    seen = _Statements(monkeypatch, app.state.engine)
    try:
        r = await post_events(client, bank, rep(app_id, "r1", "2.00"))
        again = await post_events(client, bank, rep(app_id, "r1", "2.00"))
    finally:
        seen.close()
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [{"event_id": "r1", "status": "applied", "http_status": 200, "code": None,
                                     "detail": None, "loan_id": loan_id}]}
    assert again.json()["results"][0]["status"] == "duplicate"
    assert seen.orm == []
    first = seen.raw[:4]
    assert [name for name, _ in first] == ["execute", "fetchrow", "fetchrow", "execute"], seen.raw
    assert first[0][1].startswith("BEGIN; SET LOCAL fupin.scope = ")
    assert first[1][1].startswith("WITH a AS")
    assert "FOR UPDATE" in first[1][1]
    assert "ON CONFLICT" in first[2][1]
    assert "INSERT INTO audit_event" in first[2][1]
    assert "INSERT INTO loan_repayment" in first[2][1]
    assert first[3][1] == "COMMIT"
    # a repeated event id is answered from the first read and writes only its audit row
    assert [name for name, _ in seen.raw[4:]] == ["execute", "fetchrow", "fetchrow", "execute"]
    assert seen.raw[6][1].startswith("INSERT INTO audit_event")
    async with owner_sessionmaker() as s:
        loan = await s.get(Loan, loan_id)
        assert loan is not None
        assert loan.outstanding == Decimal("9997.00")
        row = await s.scalar(select(BankLoanEvent).where(BankLoanEvent.client_id == bank.client_id,
                                                         BankLoanEvent.event_id == "r1"))
        assert row is not None
        assert (row.status, row.code, str(row.application_id)) == ("applied", None, app_id)
        audits = (await s.execute(select(AuditEvent.after).where(AuditEvent.entity_id == bank.client_id)
                                  .order_by(AuditEvent.id))).scalars().all()
        assert audits[-2:] == [{"applied": 1}, {"duplicate": 1}]


@pytest.fixture
async def failing_repayment(owner_sessionmaker) -> AsyncIterator[None]:
    """A deferred constraint trigger refusing, at COMMIT only, a repayment of FAILING_AMOUNT."""
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text(f"""
            CREATE OR REPLACE FUNCTION fupin_test_fail_repayment() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.amount = {FAILING_AMOUNT} THEN
                RAISE EXCEPTION 'injected failure at commit' USING ERRCODE = '40001';
              END IF;
              RETURN NULL;
            END $$"""))
        await s.execute(text(
            "CREATE CONSTRAINT TRIGGER loan_repayment_fail_at_commit AFTER INSERT ON loan_repayment "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fupin_test_fail_repayment()"))
    yield
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("DROP TRIGGER IF EXISTS loan_repayment_fail_at_commit ON loan_repayment"))
        await s.execute(text("DROP FUNCTION IF EXISTS fupin_test_fail_repayment()"))


async def test_a_commit_that_fails_answers_no_2xx_and_leaves_nothing(
    client, owner_sessionmaker, world, failing_repayment
):
    bank, app_id, loan_id = await _disbursed(client, owner_sessionmaker, world)
    r = await post_events(client, bank, rep(app_id, "f1", FAILING_AMOUNT))
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "conflict.concurrent"
    async with owner_sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(BankLoanEvent).where(
            BankLoanEvent.client_id == bank.client_id, BankLoanEvent.event_id == "f1")) == 0
        assert await s.scalar(select(func.count()).select_from(LoanRepayment).where(
            LoanRepayment.loan_id == loan_id)) == 0
        assert (await s.get(Loan, loan_id)).outstanding == Decimal("10000.00")  # type: ignore[union-attr]
    # the retry, once the fault is gone, goes through: nothing half-written blocks it
    async with owner_sessionmaker() as s, s.begin():
        await s.execute(text("DROP TRIGGER loan_repayment_fail_at_commit ON loan_repayment"))
    r = await post_events(client, bank, rep(app_id, "f1", FAILING_AMOUNT))
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"


class TestCredentialCache:
    async def test_a_new_secret_signs_at_once_and_a_deactivation_elsewhere_within_the_delay(
        self, app, client, owner_sessionmaker, world
    ):
        from sqlalchemy import update

        from fupin.loans import postings
        from fupin.loans.models import BankClient

        bank, app_id, _ = await _disbursed(client, owner_sessionmaker, world)
        cache = app.state.bank_credentials
        now = [1000.0]
        clock, ttl = cache.clock, cache.ttl
        cache.clock, cache.ttl = (lambda: now[0]), 5.0
        cache.forget(bank.client_id)
        try:
            assert (await post_events(client, bank, rep(app_id, "c1", "1.00"))).status_code == 200
            assert cache.get(bank.client_id) is not None
            # a wrong secret is still refused (after a second look in the database)
            r = await post_events(client, bank, rep(app_id, "c2", "1.00"), secret="not-the-secret")
            assert r.status_code == 401
            # another process rotates: the new secret signs at once (the cache's miss is checked in the database)
            async with owner_sessionmaker() as s, s.begin():
                row = await s.get(BankClient, bank.client_id)
                s.add(postings._secret_row(row, "a-new-secret-from-elsewhere", key=None))
            r = await post_events(client, bank, rep(app_id, "c2b", "1.00"), secret="a-new-secret-from-elsewhere")
            assert r.status_code == 200, r.text
            # another process deactivates the client: refused once the cached credentials are older than the delay
            async with owner_sessionmaker() as s, s.begin():
                await s.execute(update(BankClient).where(BankClient.client_id == bank.client_id).values(active=False))
            now[0] += 4.9
            assert (await post_events(client, bank, rep(app_id, "c3", "1.00"))).status_code == 200
            now[0] += 0.2
            r = await post_events(client, bank, rep(app_id, "c4", "1.00"))
            assert r.status_code == 401
            assert r.json()["code"] == "bank.bad_signature"
        finally:
            cache.clock, cache.ttl = clock, ttl

    async def test_a_zero_delay_reads_the_credentials_every_time(self):
        from fupin.loans.postings import CredentialCache, Credentials

        cache = CredentialCache(0)
        cache.put("coop-x", Credentials("RCC1", "520000000000", ("s",)))
        assert cache.get("coop-x") is None
