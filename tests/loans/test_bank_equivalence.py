"""Bulk requests, daily files and single posts through the session path give the same answer for every
event, and leave the same balances, as posting the same events one by one (the reference semantics; a single
plain repayment goes the raw fast path), over randomly generated event streams:
plain repayments (the set-based path) mixed with parked, early, over-paid, future-dated, duplicate,
conflicting, reversed and disbursed events and repayments addressed by the bank's loan number."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fupin.calendar import business_date
from fupin.loans.models import BankLoanEvent, Loan, LoanApplication, LoanApplicationStep, LoanRepayment
from fupin_worker import runner
from tests.factories import new_county
from tests.loans.factories import Bank, make_bank, make_household, post_events, ready_township, signed

APPS = 10
PRE_DISBURSED = 6  # applications disbursed before the stream; the rest are approved only


@dataclass
class World:
    bank: Bank
    apps: list[str]


async def _world(owner_sessionmaker) -> World:
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    township = county.townships[0]
    village = county.villages[township][0]
    await ready_township(owner_sessionmaker, township)
    bank = await make_bank(owner_sessionmaker, township)
    apps = []
    for _ in range(APPS):
        hh, head = await make_household(owner_sessionmaker, village)
        async with owner_sessionmaker() as s, s.begin():
            app = LoanApplication(area_code=village, township_code=township, applicant_kind="household",
                                  household_id=hh, applicant_member_id=head, product="household",
                                  amount=Decimal("10000.00"), term_months=12, purpose="livestock",
                                  subsidy_eligible=True, status="approved", submitted_on=date(2026, 9, 28))
            s.add(app)
            await s.flush()
            apps.append(str(app.id))
    return World(bank, apps)


def _disbursement(app: int, eid: str) -> dict[str, Any]:
    return {"event_id": eid, "kind": "disbursement", "application_id": f"@{app}", "external_id": f"EXT-{app}",
            "amount": "10000.00", "on": "2026-10-15", "due_on": "2026-11-10", "rate": "0.043500"}


def _stream(seed: int, *, plain: bool = False) -> list[dict[str, Any]]:
    """Events with application ids as '@n' placeholders (each world has its own applications). A plain stream
    (a daily file's usual content) has no disbursements or reversals, so most of it is decided set-based."""
    rnd = random.Random(seed)
    today = business_date()
    out: list[dict[str, Any]] = []
    n = 0
    for _ in range(140):
        n += 1
        eid = f"e{seed}-{n}"
        app = rnd.randrange(APPS)
        roll = rnd.random()
        # Plain streams pay in small amounts, so few loans are over-repaid (which needs the one-at-a-time path).
        amount = str(Decimal(rnd.choice([10, 25, 99, 150] if plain else [100, 250, 999, 1500, 3000, 4000]))
                     + Decimal(rnd.randrange(100)) / 100)
        day = (date(2026, 10, 16) + timedelta(days=rnd.randrange(40))).isoformat()
        if roll < 0.62:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}", "amount": amount, "on": day}
            if rnd.random() < 0.15:  # by the bank's own loan number
                ev = {"event_id": eid, "kind": "repayment", "external_id": f"EXT-{app}", "amount": amount, "on": day}
        elif roll < 0.67:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}",
                  "amount": "11000.00" if plain else "9000.00", "on": day}  # over-repays (likely, or surely)
        elif roll < 0.71:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}", "amount": amount,
                  "on": "2026-10-01"}  # dated before the disbursement
        elif roll < 0.74:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}", "amount": amount,
                  "on": (today + timedelta(days=3)).isoformat()}
        elif roll < 0.76:
            ev = {"event_id": eid, "kind": "repayment", "application_id": str(uuid.UUID(int=seed * 1000 + n)),
                  "amount": amount, "on": day}  # nobody's loan
        elif roll < 0.78:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}", "on": day}  # no amount
        elif roll < 0.84 and out:
            ev = dict(rnd.choice(out))  # the same event again
            if rnd.random() < 0.4 and "amount" in ev:
                ev["amount"] = "1.23"  # ... with another body
        elif plain:
            ev = {"event_id": eid, "kind": "repayment", "application_id": f"@{app}", "amount": amount, "on": day}
        elif roll < 0.90:
            ev = _disbursement(app, eid)
        elif out:
            target = rnd.choice(out)
            ev = {"event_id": eid, "kind": "reversal", "reverses_event_id": target["event_id"], "on": day}
        else:
            continue
        out.append(ev)
    return out


def _resolve(ev: dict[str, Any], world: World) -> dict[str, Any]:
    out = dict(ev)
    if str(out.get("application_id", "")).startswith("@"):
        out["application_id"] = world.apps[int(out["application_id"][1:])]
    return out


def _answer(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["event_id"], r["status"], r["http_status"], r["code"], r["detail"], r["loan_id"] is not None)


async def _state(sm, world: World) -> list[tuple[Any, ...]]:
    """Per application (by index): status, loan balance and status, repayments, steps, and event outcomes."""
    out = []
    async with sm() as s:
        for i, app_id in enumerate(world.apps):
            app = await s.get(LoanApplication, uuid.UUID(app_id))
            loan = await s.scalar(select(Loan).where(Loan.application_id == uuid.UUID(app_id)))
            reps = (await s.execute(select(LoanRepayment.amount, LoanRepayment.paid_on, LoanRepayment.source_event_id)
                                    .join(Loan, Loan.id == LoanRepayment.loan_id)
                                    .where(Loan.application_id == uuid.UUID(app_id))
                                    .order_by(LoanRepayment.source_event_id, LoanRepayment.amount))).all()
            steps = (await s.execute(select(LoanApplicationStep.step, LoanApplicationStep.from_status,
                                            LoanApplicationStep.to_status, LoanApplicationStep.on_date)
                                     .where(LoanApplicationStep.application_id == uuid.UUID(app_id))
                                     .order_by(LoanApplicationStep.recorded_at, LoanApplicationStep.step))).all()
            out.append((i, app.status if app else None,
                        (loan.outstanding, loan.status, loan.repaid_on, loan.external_id) if loan else None,
                        [tuple(r) for r in reps], [tuple(x) for x in steps]))
        events = (await s.execute(select(BankLoanEvent.event_id, BankLoanEvent.status, BankLoanEvent.code)
                                  .where(BankLoanEvent.client_id == world.bank.client_id)
                                  .order_by(BankLoanEvent.event_id))).all()
        out.append(("events", [tuple(e) for e in events]))
    return out


async def _audit(sm, world: World) -> list[tuple[Any, ...]]:
    """The bank's audit rows in order: one per request, with its outcome counts."""
    from fupin.audit.models import AuditEvent

    async with sm() as s:
        rows = (await s.execute(select(AuditEvent.action, AuditEvent.entity, AuditEvent.role, AuditEvent.area_code,
                                       AuditEvent.county_code, AuditEvent.result, AuditEvent.after)
                                .where(AuditEvent.entity_id == world.bank.client_id).order_by(AuditEvent.id))).all()
    # each world has its own county: the rows are in the bank's
    return [(r.action, r.entity, r.role, r.area_code == world.bank.area_code,
             r.county_code == world.bank.area_code[:6], r.result, r.after) for r in rows]


async def _setup(client, owner_sessionmaker) -> World:
    world = await _world(owner_sessionmaker)
    for i in range(PRE_DISBURSED):
        r = await post_events(client, world.bank, _resolve(_disbursement(i, f"pre-{i}"), world))
        assert r.status_code == 200, r.text
    return world


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "plain"), [(1, False), (2, False), (3, True), (4, True)])
async def test_bulk_and_file_answer_every_event_as_one_by_one_posting(
    seed, plain, client, owner_sessionmaker, app_sessionmaker, test_settings
):
    stream = _stream(seed, plain=plain)
    one = await _setup(client, owner_sessionmaker)
    bulk = await _setup(client, owner_sessionmaker)
    filed = await _setup(client, owner_sessionmaker)
    keyed = await _setup(client, owner_sessionmaker)

    reference = []
    for ev in stream:
        r = await post_events(client, one.bank, _resolve(ev, one))
        assert r.status_code in (200, 202, 404, 409, 422), r.text
        reference.append(_answer(r.json()["results"][0]))

    # The same events one by one through the session path (an Idempotency-Key takes it): a single plain
    # repayment above went the raw fast path (`fupin.loans.bank_fast`), and must be answered alike.
    session_answers = []
    for ev in stream:
        body, headers = signed(keyed.bank, _resolve(ev, keyed))
        r = await client.post("/bank/loan-events", content=body,
                              headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code in (200, 202, 404, 409, 422), r.text
        session_answers.append(_answer(r.json()["results"][0]))

    bulk_answers = []
    for start in range(0, len(stream), 50):  # several requests, so repeats also span requests
        r = await post_events(client, bulk.bank, {"events": [_resolve(ev, bulk) for ev in stream[start:start + 50]]})
        assert r.status_code == 200, r.text
        bulk_answers += [_answer(x) for x in r.json()["results"]]

    fmt = "csv" if seed % 2 else "jsonl"
    file_answers = await _post_file(client, app_sessionmaker, test_settings, filed, stream, fmt, plain=plain)

    assert session_answers == reference
    assert bulk_answers == reference
    assert file_answers == reference
    want = await _state(owner_sessionmaker, one)
    assert await _state(owner_sessionmaker, bulk) == want
    assert await _state(owner_sessionmaker, filed) == want
    assert await _state(owner_sessionmaker, keyed) == want
    assert await _audit(owner_sessionmaker, one) == await _audit(owner_sessionmaker, keyed)
    kinds = {a[1] for a in reference}
    assert {"applied", "refused", "duplicate"} <= kinds  # the stream exercises the interesting cases


CSV_FIELDS = ["event_id", "kind", "application_id", "external_id", "amount", "on", "due_on", "rate",
              "reverses_event_id"]


async def _post_file(client, app_sessionmaker, test_settings, world: World, stream, fmt: str,
                     *, plain: bool) -> list[tuple[Any, ...]]:
    import json

    rows = [_resolve(ev, world) for ev in stream]
    if fmt == "csv":
        lines = [",".join(CSV_FIELDS)] + [",".join(str(ev.get(f, "")) for f in CSV_FIELDS) for ev in rows]
        media = "text/csv"
    else:
        lines = [json.dumps(ev) for ev in rows]
        media = "application/x-ndjson"
    body, headers = _signed_bytes(world.bank, ("\n".join(lines) + "\n").encode())
    r = await client.post("/bank/loan-event-files", content=body, headers={**headers, "Content-Type": media})
    assert r.status_code == 202, r.text
    info = r.json()
    assert r.headers["location"] == f"/bank/loan-event-files/{info['id']}"
    key = f"bank.apply_file:{world.bank.client_id}:{info['id']}"
    assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
    status = await _signed_get(client, world.bank, f"/bank/loan-event-files/{info['id']}")
    assert status["status"] == "done"
    if plain:  # nearly all of a plain file is decided set-based, not one event at a time
        assert status["counts"].get("one_at_a_time", 0) < len(stream) // 2, status["counts"]
    assert status["progress_done"] == status["lines"]
    got = await _signed_get(client, world.bank, f"/bank/loan-event-files/{info['id']}/results?limit=10000")
    offset = 1 if fmt == "csv" else 0
    assert [x["line_no"] for x in got["items"]] == [i + 1 + offset for i in range(len(stream))]
    return [_answer(x) for x in got["items"]]


def _signed_bytes(bank: Bank, body: bytes) -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()))
    sig = hmac.new(bank.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return body, {"X-Fupin-Client": bank.client_id, "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": sig}


async def _signed_get(client, bank: Bank, url: str) -> dict[str, Any]:
    _, headers = _signed_bytes(bank, b"")
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()
