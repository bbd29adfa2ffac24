"""Structured logs: one JSON object per line, for API, worker and CLI alike.

structlog renders both its own events and every stdlib `logging` record (ours, uvicorn's, arq's,
SQLAlchemy's) through one formatter, so every line is JSON and carries the request id of the request
it belongs to. The request id lives in a context variable the API middleware sets; `fupin.jobs`
stores it on the job runs a request creates, and the worker binds it again when it runs them.

Nothing secret reaches a line: values under secret-looking keys are dropped, JWTs and bearer tokens
are cut, and 18-digit ID-card numbers are masked by the registry's one rule, in messages and
tracebacks too.
"""

from __future__ import annotations

import atexit
import functools
import logging
import logging.config
import logging.handlers
import queue
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

_request_id: ContextVar[str | None] = ContextVar("fupin_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the API request this code runs for (None in the worker, CLI and tests)."""
    return _request_id.get()


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Everything logged or requested (jobs) inside belongs to `request_id`."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def get_logger(name: str) -> Any:
    """A structlog logger: `log.info("event.name", key=value, ...)`."""
    return structlog.get_logger(name)


bind = structlog.contextvars.bound_contextvars  # `with logs.bind(job_key=...):` — fields on every line inside


# --- redaction -----------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|signature|cookie|api[_-]?key", re.I)
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]{8,}")
# Mainland ID-card number: 17 digits and a check digit (0-9 or X), not part of a longer number.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
REDACTED = "[redacted]"


# One search that every string needing a change matches (a JWT, a bearer token, 18 digits or 17 and an X):
# most values (routes, codes, names, numbers) match none and skip the three substitutions.
_SUSPECT = re.compile(r"eyJ|(?i:bearer)|\d{17}[\dXx]")


def redact_text(text: str) -> str:
    if not _SUSPECT.search(text):
        return text
    text = _JWT.sub("[jwt]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    # the same shape as households.rules.mask_id: first 4, ten stars, last 4
    return _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2)[-4:], text)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Keys repeat from line to line (the access line's are always the same): decided once each."""
    return _SECRET_KEY.search(key) is not None


def _redact(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and _secret_key(k) else _redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the last word before rendering. Runs for every line (the access line of every
    request), so the common values — strings and numbers — are handled here without a further call."""
    out: dict[str, Any] = {}
    for k, v in event.items():
        if k != "event" and _secret_key(k):
            out[k] = REDACTED
        elif type(v) is str:
            out[k] = redact_text(v)
        elif v is None or type(v) in _PLAIN:
            out[k] = v
        else:
            out[k] = _redact(v)
    return out


_PLAIN = frozenset({int, float, bool})


def _add_request_id(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    rid = _request_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


# --- configuration -------------------------------------------------------------------------------

_CONTEXT: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _add_request_id,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
]


def configure_structlog() -> None:
    """structlog hands its events to stdlib logging, where `JsonFormatter` renders them. Idempotent."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_CONTEXT,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A `logging.Formatter` that writes one redacted JSON object per record."""

    def __init__(self, *, console: bool = False) -> None:
        renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if console else structlog.processors.JSONRenderer(
            ensure_ascii=False
        )
        super().__init__(
            # stdlib records (ours, uvicorn's, arq's): `extra={"request_id": ...}` where no context is left, and
            # the context `_Enqueue` kept when the line is rendered on the writer thread
            foreign_pre_chain=[*_CONTEXT, _kept_context, structlog.stdlib.ExtraAdder(allow=("request_id",))],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )


def log_config(level: str = "INFO", *, console: bool = False) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: JSON to stdout from the root logger; arq's and uvicorn's
    loggers propagate to it (uvicorn's access lines are off: the API middleware writes its own)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "console": console}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stdout}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "arq": {"handlers": [], "propagate": True},
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


# `arq --custom-log-dict fupin.logs.WORKER_LOG_CONFIG ...`: the worker's lines are JSON from the first one.
WORKER_LOG_CONFIG = log_config()


# --- the writer thread ---------------------------------------------------------------------------


def _kept_context(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    for key, value in (getattr(record, "fupin_context", None) or {}).items():
        event.setdefault(key, value)
    return event


class _Enqueue(logging.handlers.QueueHandler):
    """The root's one handler: hands each record to the writer thread, where it is rendered and written
    (the access line of every request: rendering and the write to stdout were ~20 % of a hot read's CPU,
    on the event loop). What belongs to the caller's context is settled here, while it is still the
    caller's: structlog's event dict already carries it; a stdlib record gets its message, the request id
    and the bound fields now; `exc_info=True` becomes the exception itself (the thread has none)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        event = record.msg
        if isinstance(event, dict):
            if event.get("exc_info") is True:
                event["exc_info"] = sys.exc_info()
            return record
        record.msg, record.args = record.getMessage(), None
        if "request_id" not in record.__dict__ and (rid := _request_id.get()) is not None:
            record.request_id = rid
        if bound := structlog.contextvars.get_contextvars():
            record.fupin_context = bound
        return record


_writer: logging.handlers.QueueListener | None = None


def _write_off_the_loop() -> None:
    """Move the root's handlers behind a queue and one writer thread (FIFO, so lines keep their order);
    the thread drains the queue at exit."""
    global _writer
    stop_writer()
    root = logging.getLogger()
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = logging.handlers.QueueListener(lines, *root.handlers, respect_handler_level=True)
    root.handlers = [_Enqueue(lines)]
    _writer.start()


def stop_writer() -> None:
    """Write what is queued and stop the writer thread (at exit; tests)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(stop_writer)


def configure_logging(level: str = "INFO", *, fmt: str = "json") -> None:
    """Process entry points only (uvicorn's app module, the worker start-up): replaces root handlers.
    Lines are rendered and written on a thread of their own, off the event loop."""
    configure_structlog()
    # No line carries the caller's file, thread or process (JsonFormatter renders the event dict), so the
    # record need not look them up: finding the caller's frame alone is a fifth of the access line's cost
    # (the knobs of the logging documentation's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    stop_writer()
    logging.config.dictConfig(log_config(level, console=fmt == "console"))
    _write_off_the_loop()
    logging.captureWarnings(True)


def ensure_logging(level: str = "INFO", *, fmt: str = "json") -> None:
    """Configure unless someone (a test runner, `--custom-log-dict`) already gave the root logger handlers."""
    configure_structlog()
    if not logging.getLogger().handlers:
        configure_logging(level, fmt=fmt)
