"""The API process's metrics: its own registry (process, runtime, DB pool, open job runs) and the
counters the route layer moves (HTTP, logins, bank events)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.errors import DomainError
from fupin.metrics import JobRunCollector, PoolCollector, SealLagCollector, new_registry

REGISTRY = new_registry()
REQUESTS = Counter("fupin_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "fupin_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POOL = PoolCollector()
REGISTRY.register(POOL)
JOB_RUNS = JobRunCollector(ttl=5.0)
REGISTRY.register(JOB_RUNS)
SEAL_LAG = SealLagCollector(ttl=5.0)
REGISTRY.register(SEAL_LAG)

LOGIN_FAILURES = Counter(
    "fupin_login_failures_total", "Refused logins: bad_credentials (wrong user or password) or locked",
    ["reason"], registry=REGISTRY,
)
LOGIN_LOCKOUTS = Counter(
    "fupin_login_lockouts_total", "Accounts locked after login_max_failures wrong passwords", registry=REGISTRY
)
BANK_EVENTS = Counter(
    "fupin_bank_events_total",
    "Committed bank/coop loan events by outcome: applied, parked (held until their disbursement), refused, "
    "duplicate, conflict",
    ["status"], registry=REGISTRY,
)
for _status in ("applied", "parked", "refused", "duplicate", "conflict"):
    BANK_EVENTS.labels(_status)
for _reason in ("bad_credentials", "locked"):
    LOGIN_FAILURES.labels(_reason)


class ScrapeReading(Protocol):
    """A figure read from the database when /metrics is scraped (cached by the reading itself)."""

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None: ...


# Refreshed by /metrics before rendering.
DB_READINGS: list[ScrapeReading] = [JOB_RUNS, SEAL_LAG]


def login_refused(exc: DomainError) -> None:
    """Count a refused login; `BadCredentials.locked_out` marks the attempt that locked the account."""
    LOGIN_FAILURES.labels("locked" if exc.code == "auth.locked" else "bad_credentials").inc()
    if getattr(exc, "locked_out", False):
        LOGIN_LOCKOUTS.inc()


def count_bank_events_after_commit(session: AsyncSession, statuses: Iterable[str]) -> None:
    """Count the outcomes once the request's transaction has committed: a rolled-back batch counts nothing."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1

    def committed(_session: Any) -> None:
        for status, n in counts.items():
            BANK_EVENTS.labels(status).inc(n)

    event.listen(session.sync_session, "after_commit", committed, once=True)
