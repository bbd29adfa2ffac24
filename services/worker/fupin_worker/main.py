"""arq WorkerSettings: one generic `run_job(key)` function, the sweeper on cron and at start-up.

Run it as `arq --custom-log-dict fupin.logs.WORKER_LOG_CONFIG fupin_worker.main.WorkerSettings` so that
arq's own first lines are JSON too; without the flag the logs become JSON at start-up.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin import jobs, logs
from fupin.areas.codes import prefix_of
from fupin.audit import sealer
from fupin.db import ALL_AREAS, app_url, make_engine, make_sessionmaker, set_area_scope, unit_of_work
from fupin.idempotency import service as idempotency
from fupin.settings import InsecureSettings, Settings, get_settings, require_secure
from fupin_worker import metrics, runner, sweeper

log = logs.get_logger("fupin.worker")

async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()
    logs.ensure_logging(settings.log_level, fmt=settings.log_format)
    try:
        require_secure(settings, process="the worker")
    except InsecureSettings as exc:
        log.error("worker.insecure_settings", reason=str(exc))
        raise
    engine = make_engine(app_url(settings), name="fupin-worker", pool_size=4)
    metrics.POOL.track("worker", engine)
    ctx["settings"] = settings
    ctx["engine"] = engine
    ctx["sessionmaker"] = make_sessionmaker(engine)
    if settings.worker_metrics_port:
        ctx["metrics_server"] = metrics.serve(settings.worker_metrics_port, token=settings.metrics_token)
        log.info("worker.metrics_serving", port=settings.worker_metrics_port, token_required=bool(settings.metrics_token))
    await sweep(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    if (server := ctx.pop("metrics_server", None)) is not None:
        server.shutdown()
        server.server_close()
    metrics.POOL.untrack(ctx["engine"])
    await ctx["engine"].dispose()


async def run_job(ctx: dict[str, Any], key: str) -> str:
    """One delivery of `key`, with one log line (key, kind, area, attempt, outcome, duration) and metrics.

    Every line logged while the run executes carries the id of the API request that created it."""
    sessionmaker = ctx["sessionmaker"]
    before = await _summary(sessionmaker, key)
    kind = before.kind if before else "unknown"
    fields: dict[str, Any] = {"job_key": key, "kind": kind, "area": before.area_code or None if before else None}
    if before is not None and before.request_id:
        fields["request_id"] = before.request_id
    with logs.bind(**fields):
        started = time.perf_counter()
        try:
            outcome = await runner.execute(
                sessionmaker, ctx["settings"], key, deliver=(lambda keys: _deliver(ctx, keys)) if "redis" in ctx else None
            )
        except Exception:
            metrics.observe_execution(kind, "error", time.perf_counter() - started)
            log.exception("job.run", outcome="error", duration_ms=_ms(started))
            raise
        elapsed = time.perf_counter() - started
        metrics.observe_execution(kind, outcome, elapsed)
        after = await _summary(sessionmaker, key)
        log.log(
            _LEVELS.get(outcome, logging.INFO), "job.run", outcome=outcome, attempt=after.attempts if after else None,
            status=after.status if after else None, duration_ms=_ms(started),
            error=after.last_error if after and outcome in ("failed", "dead") else None,
            waiting_for=after.waiting_for if after else None,
            waiting_reason=after.waiting_reason if after else None,
        )
    return outcome


async def _deliver(ctx: dict[str, Any], keys: list[str]) -> None:
    """Hand runs that just became pending (released from waiting) to arq; if that fails, the sweeper will."""
    try:
        async with ctx["sessionmaker"]() as session, session.begin():
            await set_area_scope(session, ALL_AREAS)
            counts = await jobs.enqueue_counts(session, keys)
            for key in keys:
                await ctx["redis"].enqueue_job("run_job", key, _job_id=jobs.arq_job_id(key, counts.get(key, 0)))
            await jobs.mark_enqueued(session, keys)
        log.info("job.released", released=keys)
    except Exception:
        log.warning("job.release_delivery_failed", released=keys, exc_info=True)


async def _summary(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> jobs.RunSummary | None:
    async with sessionmaker() as session, session.begin():
        await set_area_scope(session, ALL_AREAS)
        return await jobs.run_summary(session, key)


_LEVELS = {"failed": logging.WARNING, "dead": logging.ERROR}  # warning: retried by the sweeper; error: needs a person


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def sweep(ctx: dict[str, Any]) -> list[str]:
    keys = await sweeper.sweep(ctx["sessionmaker"], ctx["settings"], ctx["redis"])
    metrics.SWEEPER_RECOVERIES.inc(len(keys))
    return keys


async def seal_audit(ctx: dict[str, Any]) -> int:
    """Chain the audit rows committed since the last seal (no job row: sealing is idempotent by itself)."""
    settings: Settings = ctx["settings"]
    sm = ctx["sessionmaker"]
    counties = None
    if settings.worker_area:
        prefix = prefix_of(settings.worker_area)[:6]
        async with unit_of_work(sm) as session:
            counties = [c for c in await sealer.unsealed_chains(session) if c.startswith(prefix)]
    return await sealer.seal_pending(sm, key=settings.audit_checkpoint_key, counties=counties)


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Delete expired Idempotency-Key rows, a batch per transaction (an expired key is already ignored on
    read; this only keeps the table small)."""
    purged = 0
    while True:
        async with unit_of_work(ctx["sessionmaker"]) as session:
            n = await idempotency.purge_expired(session)
        purged += n
        if n < idempotency.PURGE_BATCH:
            return purged


_dumps = jobs.job_dumps
_loads = jobs.job_loads


_settings = get_settings()


_minute, _second = sweeper.cron_fields(_settings.sweeper_interval_seconds)
_seal_minute, _seal_second = sweeper.cron_fields(_settings.audit_seal_interval_seconds)


class WorkerSettings:
    functions = [run_job]
    cron_jobs = [
        cron(sweep, minute=_minute, second=_second, unique=True, run_at_startup=False),
        cron(seal_audit, minute=_seal_minute, second=_seal_second, unique=True, run_at_startup=True),
        cron(purge_idempotency_keys, minute=17, second=0, unique=True, run_at_startup=False),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(_settings.redis_url or "redis://127.0.0.1:6379/0")
    queue_name = _settings.queue_name
    job_timeout = _settings.job_timeout_seconds
    max_tries = 5
    job_serializer = staticmethod(_dumps)
    job_deserializer = staticmethod(_loads)
    health_check_key = f"{_settings.queue_name}:health"
