"""A bank's daily file (CSV or JSON lines, up to a million events): received in a stream, staged with
COPY, applied by the worker as a job with progress, answered line by line in a result file.

The file is one batch: its lines are evaluated by `fupin.loans.bank_batch`, in the job's single
transaction, so a file is applied whole or not at all and a worker killed mid-file leaves nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.auth.principal import Principal
from fupin.auth.roles import Role
from fupin.errors import NotFound, RuleViolation
from fupin.loans import bank_batch
from fupin.loans.batch_sql import EVENT_FIELDS
from fupin.loans.models import BankBatch, BankBatchEvent, BankBatchLine, BankBatchResult, BankClient

APPLY_FILE = "bank.apply_file"
FORMATS = ("csv", "jsonl")
COPY_LINES = 20_000  # lines per COPY round trip while the upload streams in
REQUIRED_COLUMNS = ("event_id", "kind", "on")


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int
    max_lines: int


def _refuse(code: str, en: str, zh: str, **extra: Any) -> RuleViolation:
    return RuleViolation(code, en, zh, extra=extra or None)


def csv_columns(header: str) -> list[str]:
    """The CSV header: known field names, each once, with event_id, kind and on among them."""
    columns = [c.strip().strip('"').strip() for c in header.split(",")]
    unknown = [c for c in columns if c not in EVENT_FIELDS]
    if unknown or len(set(columns)) != len(columns) or not set(REQUIRED_COLUMNS) <= set(columns):
        raise _refuse("bank.file_bad_header", f"the CSV header must name each of {', '.join(EVENT_FIELDS)} at "
                      f"most once, with {', '.join(REQUIRED_COLUMNS)}; got {columns}",
                      "CSV 表头字段不正确", columns=columns)
    return columns


async def _copy_lines(session: AsyncSession, batch: BankBatch, lines: list[tuple[int, str]]) -> None:
    """COPY a slice of lines into a transaction-local table, then one INSERT … SELECT into the staging table:
    COPY itself is refused on tables with row-level security, and the staging table has it."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table("bank_file_upload", records=lines, columns=["line_no", "raw"])
    await session.execute(text(
        "INSERT INTO bank_batch_line (batch_id, line_no, area_code, county, raw) "
        "SELECT :batch, u.line_no, :area, left(CAST(:area AS varchar), 6), u.raw FROM bank_file_upload u"), {"batch": batch.id, "area": batch.area_code})
    await session.execute(text("TRUNCATE bank_file_upload"))


def _decode(line: bytes) -> str:
    # Text cannot hold NUL; a line that is not UTF-8 keeps its place and is refused as not a valid event.
    return line.rstrip(b"\r").decode("utf-8", errors="replace").replace("\x00", "\ufffd")


async def receive_file(
    session: AsyncSession, *, client: BankClient, principal: Principal, chunks: AsyncIterator[bytes],
    fmt: str, filename: str | None, limits: FileLimits,
) -> tuple[BankBatch, jobs.JobRun]:
    """Stage the file line by line as it streams in and ask the worker to apply it.

    Line numbers are the file's own (a CSV header is line 1), so each result names the line it answers.
    Empty lines are skipped. Nothing is kept if the file breaks a limit or its signature fails (the
    caller verifies the signature after the last chunk, in the same transaction)."""
    if fmt not in FORMATS:
        raise _refuse("bank.file_format", "format must be csv or jsonl", "文件格式须为 csv 或 jsonl")
    batch = BankBatch(id=uuid.uuid4(), client_id=client.client_id, area_code=client.area_code, source="file",
                      format=fmt, filename=(filename or "")[:200] or None, status="received")
    session.add(batch)
    await session.flush()
    await session.execute(text("CREATE TEMP TABLE IF NOT EXISTS bank_file_upload (line_no int, raw text) "
                               "ON COMMIT DROP"))
    digest = hashlib.sha256()
    size = 0
    line_no = 0
    events = 0
    pending: list[tuple[int, str]] = []
    rest = b""
    header_needed = fmt == "csv"

    def take(line: bytes) -> None:
        nonlocal line_no, header_needed, events
        line_no += 1
        if header_needed:
            batch.columns = csv_columns(_decode(line))
            header_needed = False
            return
        if line.strip():
            pending.append((line_no, _decode(line)))
            events += 1

    async for chunk in chunks:
        size += len(chunk)
        if size > limits.max_bytes:
            raise _refuse("bank.file_too_large", f"the file exceeds {limits.max_bytes} bytes",
                          "文件超过大小上限", max_bytes=limits.max_bytes)
        digest.update(chunk)
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            take(line)
        if line_no > limits.max_lines + 1:
            raise _refuse("bank.file_too_many_lines", f"the file has more than {limits.max_lines} lines",
                          "文件行数超过上限", max_lines=limits.max_lines)
        if len(pending) >= COPY_LINES:
            await _copy_lines(session, batch, pending)
            pending.clear()
    if rest:
        take(rest)
    if pending:
        await _copy_lines(session, batch, pending)
    if events == 0:
        raise _refuse("bank.file_empty", "the file has no events", "文件没有任何交易")
    batch.sha256, batch.bytes, batch.lines = digest.hexdigest(), size, line_no
    key = f"{APPLY_FILE}:{client.client_id}:{batch.id}"
    batch.job_key = key
    run, _ = await jobs.request_job(session, kind=APPLY_FILE, key=key, area_code=client.area_code,
                                    args={"batch_id": str(batch.id)}, requested_by=principal.username)
    await session.flush()
    return batch, run


def _principal(client: BankClient) -> Principal:
    return Principal(user_id=None, username=f"bank:{client.client_id}", role=Role.bank, area_code=client.area_code)


async def apply_file(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    """Apply an uploaded file; the staged lines and working rows go, the per-line results stay."""
    batch = await session.get(BankBatch, uuid.UUID(str(run.args["batch_id"])), with_for_update=True)
    if batch is None:
        raise NotFound("bank.file_not_found", "the file is gone", "文件不存在")
    client = await session.get(BankClient, batch.client_id)
    assert client is not None

    async def progress(done: int, total: int) -> None:
        await jobs.report_progress(session, run, done=done, total=total)

    await session.execute(delete(BankBatchResult).where(BankBatchResult.batch_id == batch.id))
    await session.execute(delete(BankBatchEvent).where(BankBatchEvent.batch_id == batch.id))
    counts = await bank_batch.apply_batch(session, principal=_principal(client), client=client, batch=batch,
                                          progress=progress)
    await session.execute(delete(BankBatchEvent).where(BankBatchEvent.batch_id == batch.id))
    await session.execute(delete(BankBatchLine).where(BankBatchLine.batch_id == batch.id))
    batch.status, batch.counts, batch.finished_at = "done", counts, datetime.now(UTC)
    return {"batch_id": str(batch.id), "lines": batch.lines, **counts}


async def get_file(session: AsyncSession, *, client: BankClient, batch_id: uuid.UUID) -> tuple[BankBatch, Any]:
    """The file and its job run (status, attempts, error) and progress; another client's file is not found."""
    batch = await session.scalar(select(BankBatch).where(BankBatch.id == batch_id, BankBatch.source == "file",
                                                         BankBatch.client_id == client.client_id))
    if batch is None:
        raise NotFound("bank.file_not_found", "no such file", "未找到该文件")
    run = (await session.execute(
        select(jobs.JobRun, jobs.JobProgress.done, jobs.JobProgress.total)
        .outerjoin(jobs.JobProgress, jobs.JobProgress.key == jobs.JobRun.key)
        .where(jobs.JobRun.key == batch.job_key))).first()
    return batch, run


async def results(session: AsyncSession, *, batch: BankBatch, after: int, limit: int) -> list[BankBatchResult]:
    return list((await session.scalars(
        select(BankBatchResult).where(BankBatchResult.batch_id == batch.id, BankBatchResult.line_no > after)
        .order_by(BankBatchResult.line_no).limit(limit))).all())
