"""Every exported metric is present, and moves when what it measures happens."""

from __future__ import annotations

import ast
import asyncio
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from fupin import jobs
from fupin.auth.roles import Role
from fupin.db import make_engine
from fupin.metrics import JobRunCollector, PoolCollector, new_registry
from fupin.platform_jobs import AUDIT_VERIFY
from fupin_api import metrics as api_metrics
from fupin_worker import kinds
from fupin_worker import main as worker_main
from fupin_worker import metrics as worker_metrics
from tests.factories import PASSWORD, login, new_county, new_user, token_for

ROOT = Path(__file__).resolve().parents[2]


def _value(registry: Any, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


class TestPresence:
    async def test_api_metrics_has_process_runtime_pool_and_job_families(self, client):
        await client.get("/healthz")
        text = (await client.get("/metrics")).text
        names = {name for name, _ in _samples(text)}
        assert {
            "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info",
            "python_gc_objects_collected_total", "fupin_http_requests_total", "fupin_http_request_seconds_bucket",
            "fupin_db_pool_in_use", "fupin_db_pool_overflow", "fupin_db_pool_waiting", "fupin_db_pool_size",
            "fupin_login_failures_total", "fupin_login_lockouts_total", "fupin_bank_events_total",
        } <= names
        assert ("fupin_db_pool_size", (("pool", "api"),)) in _samples(text)

    def test_worker_registry_has_process_runtime_pool_and_job_families(self):
        worker_metrics.observe_execution("test.presence", "done", 0.01)
        names = {s.name for family in worker_metrics.REGISTRY.collect() for s in family.samples}
        assert {
            "process_cpu_seconds_total", "python_info", "python_gc_objects_collected_total",
            "fupin_job_executions_total", "fupin_job_execution_seconds_bucket",
        } <= names
        families = {family.name for family in worker_metrics.REGISTRY.collect()}
        assert {"fupin_db_pool_in_use", "fupin_db_pool_waiting", "fupin_job_failures", "fupin_sweeper_redelivered"} <= families

    def test_only_fupin_metrics_imports_prometheus_and_fupin_imports_no_web_or_queue_library(self):
        for path in (ROOT / "shared" / "fupin").rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
                n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
            }
            roots = {m.split(".")[0] for m in modules}
            assert not roots & {"fastapi", "starlette", "arq", "uvicorn", "fupin_api", "fupin_worker"}, path
            if path.name != "metrics.py" or path.parent.name != "fupin":
                assert "prometheus_client" not in roots, path


class TestHttpAndAuth:
    async def test_latency_is_labelled_by_route_template(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
        labels = {"method": "GET", "route": "/jobs/{run_id}"}
        before = _value(api_metrics.REGISTRY, "fupin_http_request_seconds_count", **labels)
        r = await client.get(f"/jobs/{uuid.uuid4()}", headers=hdr)
        assert r.status_code == 404
        assert _value(api_metrics.REGISTRY, "fupin_http_request_seconds_count", **labels) == before + 1
        assert _value(api_metrics.REGISTRY, "fupin_http_requests_total", status="404", **labels) >= 1

    async def test_login_failures_then_lockout_then_locked_refusals(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker)
        username = await new_user(owner_sessionmaker, role=Role.county_admin, area_code=county.code)
        reg = api_metrics.REGISTRY
        bad0 = _value(reg, "fupin_login_failures_total", reason="bad_credentials")
        locked0 = _value(reg, "fupin_login_failures_total", reason="locked")
        lockouts0 = _value(reg, "fupin_login_lockouts_total")
        for _ in range(test_settings.login_max_failures - 1):
            assert (await login(client, username, "wrong")).status_code == 401
        assert _value(reg, "fupin_login_lockouts_total") == lockouts0
        assert (await login(client, username, "wrong")).status_code == 401  # this one locks the account
        assert _value(reg, "fupin_login_lockouts_total") == lockouts0 + 1
        assert (await login(client, username, PASSWORD)).status_code == 429
        assert _value(reg, "fupin_login_failures_total", reason="bad_credentials") == bad0 + test_settings.login_max_failures
        assert _value(reg, "fupin_login_failures_total", reason="locked") == locked0 + 1

    async def test_a_metrics_token_closes_the_endpoint_to_everyone_else(self, test_settings):
        from fupin_api.main import create_app

        app = create_app(test_settings.model_copy(update={"metrics_token": "scrape-token-123"}), connect_redis=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                assert (await c.get("/metrics")).status_code == 401
                assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
                ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
                assert ok.status_code == 200
                assert "fupin_http_requests_total" in ok.text


class TestDatabasePool:
    async def test_in_use_overflow_and_waiting_follow_the_pool(self, test_settings):
        engine = make_engine(test_settings.database_url, name="fupin-tests-pool", pool_size=1, pool_timeout=30)
        engine.sync_engine.pool._max_overflow = 1  # type: ignore[attr-defined]
        registry = new_registry()
        collector = PoolCollector()
        registry.register(collector)
        collector.track("probe", engine)
        try:
            first = await engine.connect()
            second = await engine.connect()
            assert _value(registry, "fupin_db_pool_in_use", pool="probe") == 2
            assert _value(registry, "fupin_db_pool_overflow", pool="probe") == 1
            assert _value(registry, "fupin_db_pool_waiting", pool="probe") == 0
            third = asyncio.ensure_future(engine.connect())
            for _ in range(1000):  # let the third caller reach the pool's queue and wait there
                if _value(registry, "fupin_db_pool_waiting", pool="probe") == 1:
                    break
                await asyncio.sleep(0)
            assert _value(registry, "fupin_db_pool_waiting", pool="probe") == 1
            await second.close()
            conn = await third
            assert _value(registry, "fupin_db_pool_waiting", pool="probe") == 0
            await conn.close()
            await first.close()
            assert _value(registry, "fupin_db_pool_in_use", pool="probe") == 0
        finally:
            collector.untrack(engine)
            await engine.dispose()
        assert _value(registry, "fupin_db_pool_in_use", pool="probe") == 0


    async def test_an_engine_that_goes_away_leaves_the_others_of_its_name_reported(self, test_settings):
        first = make_engine(test_settings.database_url, name="fupin-tests-pool-a", pool_size=2)
        second = make_engine(test_settings.database_url, name="fupin-tests-pool-b", pool_size=3)
        registry = new_registry()
        collector = PoolCollector()
        registry.register(collector)
        collector.track("api", first)
        collector.track("api", second)  # a second app in the same process (tests do this)
        assert _value(registry, "fupin_db_pool_size", pool="api") == 5
        collector.untrack(second)
        assert _value(registry, "fupin_db_pool_size", pool="api") == 2
        collector.untrack(first)
        assert registry.get_sample_value("fupin_db_pool_size", {"pool": "api"}) is None
        await first.dispose()
        await second.dispose()


class TestJobRuns:
    async def test_open_runs_by_kind_and_status_with_the_age_of_the_oldest(self, owner_sessionmaker, app_sessionmaker):
        kind = f"test.metrics.{uuid.uuid4().hex[:8]}"
        collector = JobRunCollector(ttl=0)
        registry = new_registry()
        registry.register(collector)
        async with owner_sessionmaker() as s, s.begin():
            for i in range(2):
                await jobs.request_job(s, kind=kind, key=f"{kind}:{i}", area_code="")
        await collector.refresh(app_sessionmaker)
        assert _value(registry, "fupin_job_runs", kind=kind, status="pending") == 2
        assert _value(registry, "fupin_job_runs_oldest_age_seconds", kind=kind, status="pending") >= 0
        async with owner_sessionmaker() as s, s.begin():
            await s.execute(update(jobs.JobRun).where(jobs.JobRun.key == f"{kind}:0").values(status="dead"))
            await s.execute(update(jobs.JobRun).where(jobs.JobRun.key == f"{kind}:1").values(status="done"))
        await collector.refresh(app_sessionmaker)
        assert _value(registry, "fupin_job_runs", kind=kind, status="dead") == 1
        assert registry.get_sample_value("fupin_job_runs", {"kind": kind, "status": "pending"}) is None
        assert registry.get_sample_value("fupin_job_runs", {"kind": kind, "status": "done"}) is None

    async def test_the_reading_is_cached_between_scrapes(self, owner_sessionmaker, app_sessionmaker):
        kind = f"test.metrics.{uuid.uuid4().hex[:8]}"
        collector = JobRunCollector(ttl=3600)
        registry = new_registry()
        registry.register(collector)
        await collector.refresh(app_sessionmaker)
        async with owner_sessionmaker() as s, s.begin():
            await jobs.request_job(s, kind=kind, key=f"{kind}:0", area_code="")
        await collector.refresh(app_sessionmaker)
        assert registry.get_sample_value("fupin_job_runs", {"kind": kind, "status": "pending"}) is None

    async def test_api_metrics_reads_job_runs_at_scrape(self, client, owner_sessionmaker):
        kind = f"test.metrics.{uuid.uuid4().hex[:8]}"
        async with owner_sessionmaker() as s, s.begin():
            await jobs.request_job(s, kind=kind, key=f"{kind}:0", area_code="")
        api_metrics.JOB_RUNS._at = float("-inf")  # the 5-second cache may hold an earlier scrape
        text = (await client.get("/metrics")).text
        assert _samples(text)[("fupin_job_runs", (("kind", kind), ("status", "pending")))] == 1


class TestWorker:
    async def test_executions_durations_and_failures_by_kind_and_outcome(
        self, owner_sessionmaker, app_sessionmaker, test_settings, monkeypatch
    ):
        reg = worker_metrics.REGISTRY
        county = await new_county(owner_sessionmaker)
        ok_key, bad_key = f"{AUDIT_VERIFY}:test:{county.code}:ok", f"{AUDIT_VERIFY}:test:{county.code}:bad"
        async with owner_sessionmaker() as s, s.begin():
            await jobs.request_job(s, kind=AUDIT_VERIFY, key=ok_key, area_code=county.code)
        done0 = _value(reg, "fupin_job_executions_total", kind=AUDIT_VERIFY, outcome="done")
        hist0 = _value(reg, "fupin_job_execution_seconds_count", kind=AUDIT_VERIFY, outcome="done")
        failed0 = _value(reg, "fupin_job_failures_total", kind=AUDIT_VERIFY, outcome="failed")
        ctx = {"sessionmaker": app_sessionmaker, "settings": test_settings}
        assert await worker_main.run_job(ctx, ok_key) == "done"
        assert _value(reg, "fupin_job_executions_total", kind=AUDIT_VERIFY, outcome="done") == done0 + 1
        assert _value(reg, "fupin_job_execution_seconds_count", kind=AUDIT_VERIFY, outcome="done") == hist0 + 1

        async def failing(session: Any, run: jobs.JobRun) -> dict[str, Any]:
            raise RuntimeError("boom")

        monkeypatch.setitem(kinds.HANDLERS, AUDIT_VERIFY, failing)
        async with owner_sessionmaker() as s, s.begin():
            await jobs.request_job(s, kind=AUDIT_VERIFY, key=bad_key, area_code=county.code)
        assert await worker_main.run_job(ctx, bad_key) == "failed"
        assert _value(reg, "fupin_job_failures_total", kind=AUDIT_VERIFY, outcome="failed") == failed0 + 1

    async def test_sweeper_deliveries_are_counted(self, monkeypatch):
        async def sweep(sessionmaker: Any, settings: Any, redis: Any) -> list[str]:
            return ["a:1", "b:2"]

        monkeypatch.setattr(worker_main.sweeper, "sweep", sweep)
        before = _value(worker_metrics.REGISTRY, "fupin_sweeper_redelivered_total")
        assert await worker_main.sweep({"sessionmaker": None, "settings": None, "redis": None}) == ["a:1", "b:2"]
        assert _value(worker_metrics.REGISTRY, "fupin_sweeper_redelivered_total") == before + 2

    @pytest.mark.parametrize("token", ["", "worker-scrape-token"])
    async def test_the_worker_serves_its_own_metrics(self, token):
        server = worker_metrics.serve(0, token=token, addr="127.0.0.1")
        url = f"http://127.0.0.1:{server.server_port}/metrics"

        def get(headers: dict[str, str]) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, ""

        try:
            status, body = await asyncio.to_thread(get, {"Authorization": f"Bearer {token}"} if token else {})
            assert status == 200
            assert "fupin_job_executions_total" in body
            assert "process_cpu_seconds_total" in body
            if token:
                assert (await asyncio.to_thread(get, {}))[0] == 401
        finally:
            server.shutdown()
            server.server_close()


async def test_audit_seal_lag_is_exported_and_falls_to_zero_once_sealed(client, owner_sessionmaker, app, test_settings):
    from fupin.audit import sealer
    from fupin_api import metrics as api_metrics

    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.county_admin, area_code=county.code)
    assert (await client.patch(f"/areas/{county.townships[0]}", headers=hdr, json={"population": 1})).status_code == 200
    api_metrics.SEAL_LAG._at = float("-inf")  # skip the scrape cache
    body = (await client.get("/metrics")).text
    unsealed = float(re.search(r"^fupin_audit_unsealed_rows (\S+)$", body, re.M).group(1))
    assert unsealed >= 1
    assert re.search(r"^fupin_audit_seal_lag_seconds (\S+)$", body, re.M)
    await sealer.seal_pending(owner_sessionmaker, key=test_settings.audit_checkpoint_key)
    api_metrics.SEAL_LAG._at = float("-inf")
    body = (await client.get("/metrics")).text
    assert float(re.search(r"^fupin_audit_unsealed_rows (\S+)$", body, re.M).group(1)) < unsealed
