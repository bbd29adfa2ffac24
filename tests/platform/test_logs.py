"""Structured logs: a request id leads from a problem+json answer to its log lines and to its job runs,
the worker logs each run with the request that created it, and no secret or full ID number is written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fupin import jobs, logs
from fupin.auth.roles import Role
from fupin.platform_jobs import AUDIT_VERIFY
from fupin_worker import kinds
from fupin_worker import main as worker_main
from tests.factories import PASSWORD, login, new_county, new_user, token_for

Lines = Callable[[], list[dict[str, Any]]]
ID_NUMBER = "52012319900101123X"


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Every log record of the test, rendered by the production formatter and parsed back."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buf.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def lenient_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but a bug is answered 500 problem+json instead of raised into the test."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _with(lines: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [line for line in lines if all(line.get(k) == v for k, v in match.items())]


class TestRequestToLogsToJobs:
    async def test_a_failed_request_is_found_by_its_problem_request_id_and_left_no_job(
        self, lenient_client, owner_sessionmaker, test_settings, log_lines, monkeypatch
    ):
        county = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)

        async def broken_audit(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(f"audit store refused a row about {ID_NUMBER}")

        # The route requests its job, then the audit write fails: the whole transaction rolls back.
        monkeypatch.setattr("fupin.audit.service.record", broken_audit)
        r = await lenient_client.post("/jobs/audit-verify", headers=hdr)
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        request_id = r.json()["request_id"]
        assert r.headers["x-request-id"] == request_id

        mine = _with(log_lines(), request_id=request_id)
        (access,) = _with(mine, event="request")
        assert access["route"] == "/jobs/audit-verify"
        assert access["status"] == 500
        assert access["role"] == "county_admin"
        assert access["area"] == county.code
        assert access["user"].startswith("u")
        assert isinstance(access["duration_ms"], float)
        (error,) = [line for line in mine if line["level"] == "error"]
        assert "RuntimeError" in error["exception"]
        assert ID_NUMBER not in json.dumps(mine)  # masked in the traceback too
        assert ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:] in error["exception"]
        # The outbox row was part of the rolled-back transaction: no job carries this request id.
        async with owner_sessionmaker() as s:
            assert (await s.scalars(select(jobs.JobRun).where(jobs.JobRun.request_id == request_id))).all() == []

    async def test_a_job_that_fails_is_traced_to_the_request_that_created_it(
        self, client, owner_sessionmaker, app_sessionmaker, test_settings, log_lines, monkeypatch
    ):
        county = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        r = await client.post("/jobs/audit-verify", headers=hdr)
        assert r.status_code == 202
        request_id = r.headers["x-request-id"]
        key = r.json()["key"]
        assert r.json()["request_id"] == request_id
        listed = await client.get("/jobs", params={"request_id": request_id}, headers=hdr)
        assert [j["key"] for j in listed.json()["items"]] == [key]

        async def failing(session: Any, run: jobs.JobRun) -> dict[str, Any]:
            logging.getLogger("fupin.audit").warning("about to fail")
            raise RuntimeError("disk full")

        monkeypatch.setitem(kinds.HANDLERS, AUDIT_VERIFY, failing)
        ctx = {"sessionmaker": app_sessionmaker, "settings": test_settings}
        assert await worker_main.run_job(ctx, key) == "failed"

        mine = _with(log_lines(), request_id=request_id)
        (access,) = _with(mine, event="request")
        assert access["status"] == 202
        (run_line,) = _with(mine, event="job.run")
        assert run_line["job_key"] == key
        assert run_line["kind"] == AUDIT_VERIFY
        assert run_line["outcome"] == "failed"
        assert run_line["status"] == "failed"
        assert run_line["attempt"] == 1
        assert run_line["level"] == "warning"
        assert "disk full" in run_line["error"]
        assert run_line["duration_ms"] >= 0
        # Lines logged inside the run (the handler's own, the runner's traceback) carry the id too.
        assert _with(mine, event="about to fail", job_key=key)
        assert any("disk full" in line.get("exception", "") for line in mine)

    async def test_the_line_names_the_runs_area_and_cron_runs_have_no_request(
        self, owner_sessionmaker, app_sessionmaker, test_settings, log_lines
    ):
        county = await new_county(owner_sessionmaker)
        key = f"{AUDIT_VERIFY}:test:logs:{county.code}"
        async with owner_sessionmaker() as s, s.begin():
            run, _ = await jobs.request_job(s, kind=AUDIT_VERIFY, key=key, area_code=county.code, requested_by="cron")
            assert run.request_id is None
        ctx = {"sessionmaker": app_sessionmaker, "settings": test_settings}
        assert await worker_main.run_job(ctx, key) == "done"
        (line,) = _with(log_lines(), event="job.run", job_key=key)
        assert line["area"] == county.code
        assert line["outcome"] == "done"
        assert "request_id" not in line


class TestNothingSecretIsLogged:
    async def test_passwords_tokens_and_id_numbers_stay_out_of_the_logs(
        self, lenient_client, owner_sessionmaker, log_lines
    ):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.county_admin, area_code=county.code)
        assert (await login(lenient_client, username, "wrong-password-xyz")).status_code == 401
        token = (await login(lenient_client, username, PASSWORD)).json()["access_token"]
        hdr = {"Authorization": f"Bearer {token}"}
        assert (await lenient_client.get("/jobs", headers=hdr)).status_code == 200
        logging.getLogger("fupin.test").warning(
            "a careless line: %s %s", f"Bearer {token}", ID_NUMBER, extra={"request_id": "x"}
        )
        logs.get_logger("fupin.test").info("careless", password=PASSWORD, secret="s3", nested={"api_key": "k"})
        text = json.dumps(log_lines(), ensure_ascii=False)
        for secret in ("wrong-password-xyz", PASSWORD, token, token.split(".")[1], ID_NUMBER, "s3\"", "\"k\""):
            assert secret not in text
        assert "5201**********123X" in text

    def test_redaction_of_text(self):
        assert logs.redact_text(f"id {ID_NUMBER}.") == "id 5201**********123X."
        assert logs.redact_text("order 1234567890123456789012") == "order 1234567890123456789012"  # not an ID
        assert logs.redact_text("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer [redacted]"


class TestWriterThread:
    def test_lines_are_written_off_the_callers_thread_with_the_callers_context(self, monkeypatch):
        """`configure_logging` renders and writes on a thread of its own (the access line of every request
        left the event loop); what belonged to the caller — request id, bound fields, the exception being
        handled — is still on the line."""
        import threading

        out = io.StringIO()
        writers: list[str] = []
        write = out.write

        def spy(text: str) -> int:
            writers.append(threading.current_thread().name)
            return write(text)

        out.write = spy  # type: ignore[method-assign]
        monkeypatch.setattr("sys.stdout", out)
        root = logging.getLogger()
        saved = (root.handlers[:], root.level)
        try:
            logs.configure_logging("INFO")
            assert [type(h).__name__ for h in root.handlers] == ["_Enqueue"]
            with logs.request_context("rid-1"), logs.bind(job_key="k-1"):
                logs.get_logger("fupin.test").info("structlog.line", n=1)
                logging.getLogger("fupin.test").warning("stdlib %s", "line")
                try:
                    raise ValueError("boom " + ID_NUMBER)
                except ValueError:
                    logs.get_logger("fupin.test").exception("structlog.failed")
                    logging.getLogger("fupin.test").exception("stdlib failed")
            logging.getLogger("fupin.test").info("after")
        finally:
            logs.stop_writer()  # drains the queue
            root.handlers, root.level = saved
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["event"] for line in lines] == [
            "structlog.line", "stdlib line", "structlog.failed", "stdlib failed", "after"]
        for line in lines[:4]:
            assert (line["request_id"], line["job_key"]) == ("rid-1", "k-1"), line
        assert "request_id" not in lines[4]
        assert "job_key" not in lines[4]
        for line in lines[2:4]:
            assert "ValueError: boom 5201**********123X" in line["exception"], line
        assert writers
        assert threading.current_thread().name not in writers
