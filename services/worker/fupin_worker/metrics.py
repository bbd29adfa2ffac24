"""The worker's metrics: job executions and their durations, sweeper recoveries, the DB pool, process and
runtime, served on FUPIN_WORKER_METRICS_PORT (0: off) by a small HTTP server in a daemon thread.

Open job runs and their age (`fupin_job_runs*`) come from the API's /metrics: they are database-wide
figures, read once per scrape there rather than by every worker replica.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from fupin.metrics import PoolCollector, bearer_matches, new_registry

REGISTRY = new_registry()
POOL = PoolCollector()
REGISTRY.register(POOL)
JOB_EXECUTIONS = Counter(
    "fupin_job_executions_total",
    "Deliveries of a job run handled by this worker, by kind and outcome (done, failed, dead, waiting, "
    "busy, already_done, unknown)",
    ["kind", "outcome"], registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "fupin_job_execution_seconds", "Wall time of a job delivery, claim to commit, by kind and outcome",
    ["kind", "outcome"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
JOB_FAILURES = Counter(
    "fupin_job_failures_total",
    "Job deliveries that ended in an error: failed (retried by the sweeper), dead (needs a person) or error "
    "(the runner itself raised, e.g. the database was unreachable; arq retries the delivery)",
    ["kind", "outcome"], registry=REGISTRY,
)
SWEEPER_RECOVERIES = Counter(
    "fupin_sweeper_redelivered_total",
    "Runs the sweeper handed to the queue: never enqueued (including the scheduled runs its tick just "
    "created), queued too long, abandoned mid-run, failed transiently, or waiting on a run already done",
    registry=REGISTRY,
)


def observe_execution(kind: str, outcome: str, seconds: float) -> None:
    JOB_EXECUTIONS.labels(kind, outcome).inc()
    JOB_SECONDS.labels(kind, outcome).observe(seconds)
    if outcome in ("failed", "dead", "error"):
        JOB_FAILURES.labels(kind, outcome).inc()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def metrics_app(token: str) -> Callable[..., Iterable[bytes]]:
    """The registry as a WSGI app; with `token`, only `Authorization: Bearer <token>` may read it."""
    inner = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token and not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"metrics bearer token required\n"]
        return inner(environ, start_response)

    return app


def serve(port: int, *, token: str, addr: str = "0.0.0.0") -> WSGIServer:
    """Start the metrics server on `port` in a daemon thread; `server.shutdown()` stops it."""
    server = make_server(addr, port, metrics_app(token), ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="fupin-worker-metrics", daemon=True).start()
    return server
