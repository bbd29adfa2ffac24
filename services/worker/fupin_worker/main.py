"""arq WorkerSettings: one generic `run_job(key)` function, the sweeper on cron and at start-up."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from fupin import jobs
from fupin.areas.codes import prefix_of
from fupin.audit import sealer
from fupin.db import app_url, make_engine, make_sessionmaker, unit_of_work
from fupin.settings import Settings, get_settings
from fupin_worker import runner, sweeper

log = logging.getLogger("fupin.worker")

# Domain modules whose @jobs.handler registrations the worker needs.
HANDLER_MODULES = [
    "fupin.platform_jobs",
    "fupin.loans.jobs",
    "fupin_worker.jobs.loans",
    "fupin_worker.jobs.assessment",
    "fupin_worker.jobs.dividends",
    "fupin.subsidies.jobs",
    "fupin_worker.jobs.subsidies",
]


def _load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()
    _load_handlers()
    engine = make_engine(app_url(settings), name="fupin-worker", pool_size=4)
    ctx["settings"] = settings
    ctx["engine"] = engine
    ctx["sessionmaker"] = make_sessionmaker(engine)
    await sweeper.sweep(ctx["sessionmaker"], settings, ctx["redis"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


async def run_job(ctx: dict[str, Any], key: str) -> str:
    return await runner.execute(ctx["sessionmaker"], ctx["settings"], key)


async def sweep(ctx: dict[str, Any]) -> list[str]:
    return await sweeper.sweep(ctx["sessionmaker"], ctx["settings"], ctx["redis"])


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
