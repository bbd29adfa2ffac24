"""The deployment files parse and point at things that exist: routes, image, modules, entry points."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fupin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = "fupin:latest"


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs() if d["kind"] == kind]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def _route_paths() -> set[str]:
    from fupin_api.main import create_app

    app = create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x"))
    # Newer FastAPI keeps included routers lazily in app.routes; the OpenAPI paths list every route.
    return {getattr(r, "path", "") for r in app.routes} | set(app.openapi()["paths"])


def _entry_points() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project["scripts"])


def _check_command(cmd: list[str]) -> None:
    """The first word is an installed tool and the object it names is importable."""
    tool = cmd[0]
    if tool == "uvicorn":
        module, attr = cmd[1].split(":")
        assert attr == "app"
        assert importlib.util.find_spec(module) is not None, module
    elif tool == "arq":
        target = next(a for a in cmd[1:] if not a.startswith("-"))
        module, _, attr = target.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), target
    elif tool == "fupin":
        assert tool in _entry_points()
        from fupin.cli import app

        names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
        assert cmd[1] in names, cmd
    else:
        pytest.fail(f"unknown command {cmd}")


def test_every_manifest_parses_and_has_kind() -> None:
    docs = _docs()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "Job", "Secret", "Service"]
    )
    for d in docs:
        assert d["apiVersion"]
        assert d["metadata"]["name"]


def test_probes_point_at_routes_that_exist() -> None:
    paths = _route_paths()
    api = next(d for d in _by_kind("Deployment") if d["metadata"]["name"] == "fupin-api")
    (container,) = _containers(api)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= paths
    port_names = {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names


def test_images_are_the_dockerfile_image_and_commands_are_real() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "python:3.11-slim" in dockerfile
    assert re.search(r"^USER\s+(?!root|0\b)\S+", dockerfile, re.M), "image must run as non-root"
    assert "pip install ." in dockerfile
    cmd = re.search(r"^CMD\s+(\[.*\])", dockerfile, re.M)
    assert cmd is not None
    _check_command(yaml.safe_load(cmd.group(1)))
    for kind in ("Deployment", "Job"):
        for doc in _by_kind(kind):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
            for c in _containers(doc):
                assert c["image"] == IMAGE
                _check_command(c["command"])
                refs = {next(iter(e.values()))["name"] for e in c["envFrom"]}
                assert refs == {"fupin-config", "fupin-secrets"}


def test_config_keys_are_settings_fields_and_databases_are_external() -> None:
    fields = {f"FUPIN_{name.upper()}" for name in Settings.model_fields}
    (config,) = _by_kind("ConfigMap")
    (secret,) = _by_kind("Secret")
    assert set(config["data"]) <= fields
    assert set(secret["stringData"]) <= fields
    assert {"FUPIN_DATABASE_URL", "FUPIN_APP_DATABASE_URL", "FUPIN_REDIS_URL", "FUPIN_JWT_SECRET"} <= set(secret["stringData"])
    # PostgreSQL and Redis are managed services outside the cluster: nothing here runs them.
    images = {c["image"] for d in _by_kind("Deployment") + _by_kind("Job") for c in _containers(d)}
    assert images == {IMAGE}


def test_worker_runs_several_replicas_and_hpa_targets_api() -> None:
    worker = next(d for d in _by_kind("Deployment") if d["metadata"]["name"] == "fupin-worker")
    assert worker["spec"]["replicas"] >= 3
    (hpa,) = _by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "fupin-api"
    (svc,) = _by_kind("Service")
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "fupin-api"}


def test_compose_has_the_five_services_with_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("migrate", "api", "worker"):
        svc = services[name]
        assert svc["image"] == IMAGE
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        _check_command(svc["command"])
        env = svc["environment"]
        assert {"FUPIN_DATABASE_URL", "FUPIN_REDIS_URL"} <= set(env)
    assert services["migrate"]["command"] == ["fupin", "migrate"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name]
