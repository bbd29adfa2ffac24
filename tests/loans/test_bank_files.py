"""The daily-file route: streamed upload under the signature, refusals of the whole file, per-line refusals
of bad lines, the worker job with progress, paged results, and one client never seeing another's file."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from fupin.loans.models import BankBatch, BankBatchLine
from fupin_worker import runner
from tests.loans.factories import Bank, make_bank
from tests.loans.test_bank import approved, disb, rep


def _headers(bank: Bank, body: bytes, *, media: str | None = None, secret: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time()))
    sig = hmac.new((secret or bank.secret).encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    out = {"X-Fupin-Client": bank.client_id, "X-Fupin-Timestamp": stamp, "X-Fupin-Signature": sig}
    if media:
        out["Content-Type"] = media
    return out


async def _upload(client, bank: Bank, body: bytes, media: str = "application/x-ndjson", *,
                  filename: str | None = None, **kw: Any):
    return await client.post("/bank/loan-event-files", content=body, headers=_headers(bank, body, media=media, **kw),
                             params={"filename": filename} if filename else None)


async def _get(client, bank: Bank, url: str):
    return await client.get(url, headers=_headers(bank, b""))


async def _staged(sm, bank: Bank) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(BankBatchLine).join(
            BankBatch, BankBatch.id == BankBatchLine.batch_id).where(BankBatch.client_id == bank.client_id)) or 0)


class TestUpload:
    async def test_a_bad_signature_keeps_nothing(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        body = b'{"event_id":"x","kind":"repayment","amount":"1.00","on":"2026-11-01"}\n'
        r = await _upload(client, bank, body, secret="not-the-secret")
        assert r.status_code == 401
        assert r.json()["code"] == "bank.bad_signature"
        assert await _staged(owner_sessionmaker, bank) == 0

    async def test_whole_file_refusals(self, client, owner_sessionmaker, world):
        bank = await make_bank(owner_sessionmaker, world.township)
        cases = [
            (b"event_id,kind,amount,colour\nx,repayment,1.00,red\n", "text/csv", "bank.file_bad_header"),
            (b"event_id,kind\nx,repayment\n", "text/csv", "bank.file_bad_header"),  # `on` is required
            (b"", "application/x-ndjson", "bank.file_empty"),
            (b"event_id,kind,on\n", "text/csv", "bank.file_empty"),
            (b"{}\n", "application/json", "bank.file_format"),
        ]
        for body, media, code in cases:
            r = await _upload(client, bank, body, media)
            assert (r.status_code, r.json().get("code")) == (422, code), (body, r.text)
        assert await _staged(owner_sessionmaker, bank) == 0

    async def test_a_file_over_the_line_limit_is_refused_whole(self, client, owner_sessionmaker, world, app):
        bank = await make_bank(owner_sessionmaker, world.township)
        settings = app.state.settings
        saved = settings.bank_file_max_lines
        settings.bank_file_max_lines = 3
        try:
            body = b"".join(json.dumps(rep(str(uuid.uuid4()), f"l{i}", "1.00")).encode() + b"\n" for i in range(5))
            r = await _upload(client, bank, body)
        finally:
            settings.bank_file_max_lines = saved
        assert (r.status_code, r.json()["code"]) == (422, "bank.file_too_many_lines")
        assert await _staged(owner_sessionmaker, bank) == 0


class TestProcessing:
    async def test_bad_lines_are_refused_one_by_one_and_the_rest_applied(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings, world
    ):
        bank = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        lines = [
            json.dumps(disb(app_id, "f1")),
            '{"event_id": "f2", "kind": "repayment", "application_id": "' + app_id + '", "amount": "1,000", '
            '"on": "2026-11-01"}',  # not a decimal
            "{not json",
            "",  # empty lines are skipped
            json.dumps(rep(app_id, "f3", "1000.00")),
            '{"event_id": "f4", "kind": "repayment", "application_id": "' + app_id + '", "amount": "1e3", '
            '"on": "2026-11-01"}',  # exponents are not decimals here
            '{"event_id": "f5", "kind": "repayment", "application_id": "' + app_id + '", "amount": "5.00", '
            '"on": "2026-02-30"}',  # no such day
            '["an", "array"]',
            '{"event_id": "f6", "kind": "repayment", "application_id": "' + app_id + '", "amount": "5.00", '
            '"on": "2026-11-02", "colour": "red"}',
            json.dumps(rep(app_id, "f7", "500.00", on="2026-11-05")),
        ]
        body = ("\n".join(lines) + "\n").encode()
        r = await _upload(client, bank, body, filename="daily-20261130.jsonl")
        assert r.status_code == 202, r.text
        info = r.json()
        assert (info["lines"], info["status"], info["sha256"]) == (10, "received", hashlib.sha256(body).hexdigest())
        key = f"bank.apply_file:{bank.client_id}:{info['id']}"
        assert await runner.execute(app_sessionmaker, test_settings, key) == "done"
        assert await runner.execute(app_sessionmaker, test_settings, key) == "already_done"  # a rerun pays nothing
        got = (await _get(client, bank, f"/bank/loan-event-files/{info['id']}/results")).json()["items"]
        by_line = {x["line_no"]: (x["status"], x["code"], x["detail"]) for x in got}
        assert by_line[1][0] == "applied"
        assert by_line[2] == ("refused", "bank.invalid_line",
                              'amount: a positive decimal string with at most two places, e.g. "20000.00"')
        assert by_line[3] == ("refused", "bank.invalid_line", "line: not valid JSON")
        assert 4 not in by_line
        assert by_line[5] == ("applied", None, None)
        assert by_line[6][1] == by_line[2][1]
        assert by_line[7] == ("refused", "bank.invalid_line", "on: required, a date YYYY-MM-DD")
        assert by_line[8][2].startswith("line: not a JSON object")
        assert by_line[9] == ("refused", "bank.invalid_line", "line: unknown field")
        assert by_line[10] == ("applied", None, None)
        loan = (await client.get(f"/loans/{got[0]['loan_id']}", headers=world.h[world_role()])).json()
        assert loan["outstanding"] == "8500.00"
        status = (await _get(client, bank, f"/bank/loan-event-files/{info['id']}")).json()
        assert status["status"] == "done"
        assert status["job_status"] == "done"
        assert (status["progress_done"], status["progress_total"]) == (10, 10)
        assert status["counts"]["applied"] == 3
        assert status["counts"]["refused"] == 6

    async def test_results_page_in_line_order_and_files_are_private_to_their_client(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings, world
    ):
        bank = await make_bank(owner_sessionmaker, world.township)
        other = await make_bank(owner_sessionmaker, world.township)
        app_id = await approved(client, owner_sessionmaker, world)
        rows = ["event_id,kind,application_id,amount,on,due_on,rate,external_id",
                f"c1,disbursement,{app_id},10000.00,2026-10-15,2026-11-10,0.043500,EXT-77"]
        rows += [f"c{i},repayment,,1.00,2026-11-01,,,EXT-77" for i in range(2, 9)]  # by the bank's loan number
        body = ("\r\n".join(rows)).encode()  # CRLF, no final newline
        r = await _upload(client, bank, body, "text/csv")
        assert r.status_code == 202, r.text
        file_id = r.json()["id"]
        assert await runner.execute(app_sessionmaker, test_settings,
                                    f"bank.apply_file:{bank.client_id}:{file_id}") == "done"
        first = (await _get(client, bank, f"/bank/loan-event-files/{file_id}/results?limit=5")).json()
        assert [x["line_no"] for x in first["items"]] == [2, 3, 4, 5, 6]
        rest = (await _get(client, bank, f"/bank/loan-event-files/{file_id}/results?cursor={first['next_cursor']}")
                ).json()
        assert [x["line_no"] for x in rest["items"]] == [7, 8, 9]
        assert rest["next_cursor"] is None
        assert {x["status"] for x in first["items"] + rest["items"]} == {"applied"}
        for url in (f"/bank/loan-event-files/{file_id}", f"/bank/loan-event-files/{file_id}/results"):
            assert (await _get(client, other, url)).status_code == 404


def world_role():
    from fupin.auth.roles import Role

    return Role.credit_coop
