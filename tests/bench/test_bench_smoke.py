"""`make bench` in miniature, so the benchmark code cannot rot: it must seed, serve, load, measure and
write its report. No figure is asserted (benchmarks never fail on a time), only that each was measured."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / ".work" / "results-smoke.md"


@pytest.mark.slow
def test_bench_smoke_runs_end_to_end() -> None:
    from bench.jobs import JOBS
    from bench.run import ROUTES

    OUT.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *(str(ROOT / p) for p in ("shared", "services/api", "services/worker")), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = OUT.read_text(encoding="utf-8")
    assert "reproduce: `python -m bench.run --smoke`" in report
    for route in ROUTES:
        row = next(line for line in report.splitlines() if line.startswith(f"| {route.name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        if "auth/token" not in route.name:  # argon2 at 0.5 s a hash may finish nothing within 1 s
            assert float(cells[1].replace(",", "")) > 0, row
            assert cells[5] == "0", f"errors in {row}"
    for job in JOBS:
        assert f"| {job.name} |" in report
    assert re.search(r"\| API \(uvicorn, during the route runs\) \| [1-9]", report)
    # The bench drops the database it made.
    name = re.search(r"seeding (fupin_bench_\w+):", proc.stdout).group(1)  # type: ignore[union-attr]
    asyncio.run(_assert_dropped(name))


async def _assert_dropped(name: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bench.run import admin_url

    engine = create_async_engine(admin_url())
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}) == 0
    await engine.dispose()


@pytest.mark.slow
def test_bank_bench_smoke_runs_end_to_end() -> None:
    """`python -m bench.bank --smoke`: single posts at 1/10/50 connections against the same-writes floor, and a
    daily file through the upload route and the worker job against COPY + set-based writes."""
    out = ROOT / "bench" / ".work" / "results-bank-smoke.md"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *(str(ROOT / p) for p in ("shared", "services/api", "services/worker")), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run([sys.executable, "-m", "bench.bank", "--smoke"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    for conns in (1, 10, 50):
        assert re.search(rf"^\| {conns} \| [\d,]+ \|", report, re.M), report
    assert re.search(r"\| file route total \| [\d.]+ \| [\d.]+× \(goal ≤ 2×\) \|", report)
    assert '"applied": 2000' in report


@pytest.mark.slow
def test_photo_upload_bench_smoke_runs_end_to_end() -> None:
    out = ROOT / "bench" / ".work" / "results-documents-smoke.md"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *(str(ROOT / p) for p in ("shared", "services/api", "services/worker")), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run([sys.executable, "-m", "bench.documents", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert "; 0 errors; 40 objects stored" in report
    assert re.search(r"\| `POST /documents` \| [0-9.]+ \| [0-9.]*[1-9]", report)
    assert re.search(r"peak [1-9][0-9]*\.", report)
    name = re.search(r"seeding (fupin_bench_docs_\w+):", proc.stdout).group(1)  # type: ignore[union-attr]
    asyncio.run(_assert_dropped(name))
