"""A real uvicorn process serving the app, for tests that need real HTTP (response timing, outages)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask a child process to end, and kill it if it has not within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def live_api(env: dict[str, str] | None = None, *, startup_timeout: float = 60) -> Iterator[str]:
    """Start `uvicorn fupin_api.asgi:app` with `env` added to this process's environment; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fupin_api.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--timeout-keep-alive", "300"],
        env={**os.environ, **(env or {})}, cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "uvicorn exited during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        yield base
    finally:
        stop(proc)
