"""Prometheus collectors that API and worker share: process and runtime, the database pool, open job runs.

This is the only module of `fupin` that imports prometheus_client (a layering test holds that), and
the domain modules never call it. prometheus_client is an instrumentation library with no web or
queue framework behind it; keeping these collectors here means both processes export the same
names from one definition, instead of two copies drifting apart in `fupin_api` and `fupin_worker`.
Counters that belong to one process (HTTP requests, logins, bank events; job executions, sweeper
recoveries) are defined in that process's own `metrics.py`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fupin import jobs
from fupin.db import ALL_AREAS, set_area_scope

log = logging.getLogger("fupin.metrics")



def new_registry() -> CollectorRegistry:
    """A process's registry: process (CPU, memory, file descriptors), Python platform and GC collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time (FUPIN_METRICS_TOKEN)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _pool_waiters(pool: Any) -> int:
    """Coroutines waiting for a connection. SQLAlchemy keeps no count of its own, so this reads the
    asyncio.Queue under AsyncAdaptedQueuePool (a test holds it against the installed version)."""
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    getters = getattr(queue, "_getters", None)
    return sum(1 for g in getters if not g.done()) if getters is not None else 0


class PoolCollector(Collector):
    """SQLAlchemy pool figures read at scrape time, one label value per pool name (summed over the
    engines tracked under that name, e.g. two app instances in one test process)."""

    def __init__(self) -> None:
        self._engines: dict[int, tuple[str, AsyncEngine]] = {}

    def track(self, name: str, engine: AsyncEngine) -> None:
        self._engines[id(engine)] = (name, engine)

    def untrack(self, engine: AsyncEngine) -> None:
        self._engines.pop(id(engine), None)

    FAMILIES = (
        ("fupin_db_pool_size", "Configured pool size (connections kept open)"),
        ("fupin_db_pool_in_use", "Connections checked out of the pool"),
        ("fupin_db_pool_overflow", "Connections open beyond the pool size (up to max_overflow)"),
        ("fupin_db_pool_waiting", "Callers waiting for a pooled connection"),
    )

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc, labels=["pool"]) for name, doc in self.FAMILIES]

    def collect(self) -> list[GaugeMetricFamily]:
        figures: dict[str, list[float]] = {}
        for name, engine in list(self._engines.values()):
            pool: Any = engine.sync_engine.pool
            sums = figures.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            for i, value in enumerate((pool.size(), pool.checkedout(), max(pool.overflow(), 0), _pool_waiters(pool))):
                sums[i] += value
        families = self.describe()
        for name, values in figures.items():
            for family, value in zip(families, values, strict=True):
                family.add_metric([name], value)
        return families


class ScrapedReading(Collector):
    """A figure read from the database when /metrics is scraped. `collect()` is synchronous
    (prometheus_client calls it while rendering), so the /metrics route awaits `refresh()` first; the
    reading is cached for `ttl` seconds so that many replicas and scrapers cost the database one query per
    interval, and a failed reading drops its series rather than the scrape."""

    what = "reading"

    def __init__(self, *, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._at = float("-inf")
        self._lock: asyncio.Lock | None = None

    @abstractmethod
    async def read(self, session: AsyncSession) -> None:
        """Read the figures (the session has the system scope)."""

    @abstractmethod
    def clear(self) -> None:
        """Forget the figures after a failed reading."""

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        if time.monotonic() - self._at < self.ttl:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            try:
                async with sessionmaker() as session, session.begin():
                    await set_area_scope(session, ALL_AREAS)  # every area: an operator's figure
                    await self.read(session)
            except Exception:
                log.warning("%s unavailable", self.what, exc_info=True)
                self.clear()
            self._at = time.monotonic()


class JobRunCollector(ScrapedReading):
    """Open job runs by kind and status, and the age of the oldest of each, from `job_run` (one indexed
    GROUP BY over the open statuses)."""

    what = "job_run statistics"

    def __init__(self, *, ttl: float = 5.0) -> None:
        super().__init__(ttl=ttl)
        self._stats: list[jobs.RunStat] = []

    async def read(self, session: AsyncSession) -> None:
        self._stats = await jobs.run_stats(session)

    def clear(self) -> None:
        self._stats = []

    def collect(self) -> Iterable[Metric]:
        runs = GaugeMetricFamily(
            "fupin_job_runs", "Job runs not done, by kind and status (pending, running, waiting, failed, dead)",
            labels=["kind", "status"],
        )
        oldest = GaugeMetricFamily(
            "fupin_job_runs_oldest_age_seconds",
            "Age of the oldest run in each kind and status (running: since it started; others: since created)",
            labels=["kind", "status"],
        )
        for s in self._stats:
            runs.add_metric([s.kind, s.status], float(s.count))
            oldest.add_metric([s.kind, s.status], s.oldest_age_seconds)
        return [runs, oldest]


class SealLagCollector(ScrapedReading):
    """Audit rows not yet sealed into their county chain, and the age of the oldest (0 when none):
    `fupin.audit.sealer.seal_lag`, from the partial index on unsealed rows."""

    what = "audit seal lag"

    def __init__(self, *, ttl: float = 5.0) -> None:
        super().__init__(ttl=ttl)
        self._lag: tuple[int, float | None] | None = None

    async def read(self, session: AsyncSession) -> None:
        from fupin.audit.sealer import seal_lag

        self._lag = await seal_lag(session)

    def clear(self) -> None:
        self._lag = None

    def collect(self) -> Iterable[Metric]:
        # The families are declared even before the first reading (or when it failed), so a scrape
        # always shows the series exist; samples come only from a reading.
        rows = GaugeMetricFamily("fupin_audit_unsealed_rows", "Audit rows written but not yet sealed into a chain")
        lag = GaugeMetricFamily("fupin_audit_seal_lag_seconds",
                                "Age of the oldest audit row not yet sealed (0 when every row is sealed)")
        if self._lag is not None:
            unsealed, age = self._lag
            rows.add_metric([], float(unsealed))
            lag.add_metric([], age or 0.0)
        return [rows, lag]
