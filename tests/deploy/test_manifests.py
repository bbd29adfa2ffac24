"""The deployment files are valid and say what operations needs: Kubernetes manifests and the compose file.

Kubernetes: every document is loaded into the official Kubernetes API models (the `kubernetes` Python
client, generated from the cluster's OpenAPI schema; kubeconform needs the network). A model refuses a
missing required field, and a document that does not survive the round trip document → model →
document unchanged has a misspelt or misplaced field. Then the properties: pinned images, separate
owner and app Secrets, writable /tmp under a read-only root, resources, probes, disruption budgets,
network policies, a per-release migration Job, trusted proxies.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from fupin.settings import SECRET_KEYS, InsecureSettings, Settings, require_secure

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
IMAGE = f"fupin:{VERSION}"
APP_SECRET, OWNER_SECRET = "fupin-app", "fupin-owner"


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs() if d["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _by_kind(kind) if d["metadata"]["name"] == name)


def _workloads() -> list[dict[str, Any]]:
    return _by_kind("Deployment") + _by_kind("Job")


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _model_name(doc: dict[str, Any]) -> str:
    version = doc["apiVersion"].split("/")[-1]
    return version[0].upper() + version[1:] + doc["kind"]


def _entry_points() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project["scripts"])


def _check_command(cmd: list[str]) -> None:
    """The first word is an installed tool and what it names is importable."""
    tool = cmd[0]
    if tool == "uvicorn":
        module, attr = cmd[1].split(":")
        assert attr == "app"
        assert importlib.util.find_spec(module) is not None, module
    elif tool == "arq":
        args = iter(cmd[1:])
        targets = []
        for a in args:
            if a == "--custom-log-dict":
                module, _, attr = next(args).rpartition(".")
                assert isinstance(getattr(importlib.import_module(module), attr), dict)
            elif not a.startswith("-"):
                targets.append(a)
        (target,) = targets
        module, _, attr = target.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), target
    elif tool == "fupin":
        assert tool in _entry_points()
        from fupin.cli import app

        names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
        assert cmd[1] in names, cmd
    else:
        pytest.fail(f"unknown command {cmd}")


class TestSchema:
    @pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
    def test_every_document_is_a_valid_kubernetes_object(self, doc: dict[str, Any]) -> None:
        api = ApiClient()
        model = api._ApiClient__deserialize(doc, _model_name(doc))  # type: ignore[attr-defined]
        assert api.sanitize_for_serialization(model) == doc, "a field the Kubernetes schema does not know"

    def test_a_misspelt_field_is_caught(self) -> None:
        doc = _named("Deployment", "fupin-api")
        doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
        api = ApiClient()
        model = api._ApiClient__deserialize(doc, _model_name(doc))  # type: ignore[attr-defined]
        assert api.sanitize_for_serialization(model) != doc

    def test_the_expected_objects_exist(self) -> None:
        names = sorted((d["kind"], d["metadata"]["name"]) for d in _docs())
        assert names == sorted([
            ("ConfigMap", "fupin-config"), ("Deployment", "fupin-api"), ("Deployment", "fupin-worker"),
            ("HorizontalPodAutoscaler", "fupin-api"), ("Job", f"fupin-migrate-{VERSION.replace('.', '-')}"),
            ("NetworkPolicy", "fupin-api-ingress"), ("NetworkPolicy", "fupin-default-deny-ingress"),
            ("NetworkPolicy", "fupin-worker-metrics"), ("PodDisruptionBudget", "fupin-api"),
            ("PodDisruptionBudget", "fupin-worker"), ("Secret", APP_SECRET), ("Secret", OWNER_SECRET),
            ("Service", "fupin-api"),
        ])


class TestWorkloads:
    def test_images_are_pinned_to_the_release_and_commands_are_real(self) -> None:
        dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
        assert re.search(r"^USER\s+(?!root|0\b)\S+", dockerfile, re.M), "image must run as non-root"
        cmd = re.search(r"^CMD\s+(\[.*\])", dockerfile, re.M)
        assert cmd is not None
        _check_command(yaml.safe_load(cmd.group(1)))
        assert not re.search(r"^FROM\s+\S+:latest", dockerfile, re.M)
        for doc in _workloads():
            for c in _pod(doc)["containers"]:
                assert c["image"] == IMAGE, "pinned to this release's tag, never :latest"
                _check_command(c["command"])

    def test_secrets_owner_only_for_migrations_app_role_for_api_and_worker(self) -> None:
        fields = {f"FUPIN_{name.upper()}" for name in Settings.model_fields}
        app_secret, owner_secret = _named("Secret", APP_SECRET), _named("Secret", OWNER_SECRET)
        assert set(app_secret["stringData"]) <= fields
        assert set(owner_secret["stringData"]) <= fields
        assert "FUPIN_DATABASE_URL" in owner_secret["stringData"]
        assert "FUPIN_DATABASE_URL" not in app_secret["stringData"]
        assert {"FUPIN_APP_DATABASE_URL", "FUPIN_REDIS_URL", "FUPIN_JWT_SECRET", "FUPIN_BANK_SECRET_KEY",
                "FUPIN_AUDIT_CHECKPOINT_KEY"} <= set(app_secret["stringData"])
        # the migration encrypts bank secrets stored in clear by older releases: it needs the same key
        assert "FUPIN_BANK_SECRET_KEY" in owner_secret["stringData"]
        assert "fupin_owner" not in str(app_secret)
        (config,) = _by_kind("ConfigMap")
        assert set(config["data"]) <= fields
        assert not {"FUPIN_DATABASE_URL", "FUPIN_APP_DATABASE_URL", *(f"FUPIN_{k.upper()}" for k in SECRET_KEYS)
                    } & set(config["data"])
        assert config["data"]["FUPIN_ENVIRONMENT"] == "production"  # so the key checks apply
        for doc in _workloads():
            for c in _pod(doc)["containers"]:
                secrets = {e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e}
                expected = {OWNER_SECRET} if doc["kind"] == "Job" else {APP_SECRET}
                assert secrets == expected, doc["metadata"]["name"]
                assert "env" not in c or all("valueFrom" not in e for e in c["env"])

    def test_read_only_root_with_a_writable_tmp_and_resources(self) -> None:
        for doc in _workloads():
            pod = _pod(doc)
            assert pod["securityContext"]["runAsNonRoot"] is True
            volumes = {v["name"]: v for v in pod["volumes"]}
            for c in pod["containers"]:
                assert c["securityContext"]["readOnlyRootFilesystem"] is True
                assert c["securityContext"]["allowPrivilegeEscalation"] is False
                (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert "emptyDir" in volumes[tmp["name"]]
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c["resources"][kind]), (doc["metadata"]["name"], kind)

    def test_readiness_is_the_database_only_and_probes_point_at_real_routes(self) -> None:
        from fupin_api.main import create_app

        app = create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x"))
        paths = set(app.openapi()["paths"])
        (api,) = _pod(_named("Deployment", "fupin-api"))["containers"]
        assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"/readyz", "/healthz"} <= paths
        assert api["readinessProbe"]["httpGet"]["port"] in {p["name"] for p in api["ports"]}
        (worker,) = _pod(_named("Deployment", "fupin-worker"))["containers"]
        assert worker["livenessProbe"]["exec"]["command"][:2] == ["arq", "--check"]

    def test_forwarded_headers_are_trusted_from_the_ingress_range_only(self) -> None:
        (api,) = _pod(_named("Deployment", "fupin-api"))["containers"]
        cmd = api["command"]
        assert "--proxy-headers" in cmd
        allowed = cmd[cmd.index("--forwarded-allow-ips") + 1]
        assert "*" not in allowed
        for net in allowed.split(","):
            assert ipaddress.ip_network(net.strip()).is_private
        assert "*" not in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").split("CMD", 1)[1]

    def test_migrations_run_as_a_job_named_for_the_release(self) -> None:
        (job,) = _by_kind("Job")
        assert job["metadata"]["name"] == f"fupin-migrate-{VERSION.replace('.', '-')}"
        assert job["metadata"]["labels"]["app.kubernetes.io/version"] == VERSION
        assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
        assert _pod(job)["containers"][0]["command"] == ["fupin", "migrate"]
        assert _pod(job)["restartPolicy"] == "Never"

    def test_worker_metrics_port_matches_the_setting(self) -> None:
        (config,) = _by_kind("ConfigMap")
        (worker,) = _pod(_named("Deployment", "fupin-worker"))["containers"]
        ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
        assert ports["metrics"] == int(config["data"]["FUPIN_WORKER_METRICS_PORT"])


class TestAvailabilityAndNetwork:
    def test_disruption_budgets_cover_api_and_worker(self) -> None:
        selected = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: d for d in _by_kind("PodDisruptionBudget")}
        assert set(selected) == {"fupin-api", "fupin-worker"}
        assert selected["fupin-api"]["spec"]["minAvailable"] >= 1
        api = _named("Deployment", "fupin-api")
        assert api["spec"]["replicas"] > selected["fupin-api"]["spec"]["minAvailable"]
        assert _named("HorizontalPodAutoscaler", "fupin-api")["spec"]["minReplicas"] >= 2

    def test_network_policies_deny_by_default_and_open_only_the_named_ports(self) -> None:
        deny = _named("NetworkPolicy", "fupin-default-deny-ingress")
        assert deny["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "fupin"}
        assert deny["spec"]["policyTypes"] == ["Ingress"]
        assert "ingress" not in deny["spec"]
        (api,) = _pod(_named("Deployment", "fupin-api"))["containers"]
        (worker,) = _pod(_named("Deployment", "fupin-worker"))["containers"]
        for name, container in (("fupin-api-ingress", api), ("fupin-worker-metrics", worker)):
            policy = _named("NetworkPolicy", name)
            (rule,) = policy["spec"]["ingress"]
            assert {p["port"] for p in rule["ports"]} == {p["containerPort"] for p in container["ports"]}
            assert all("namespaceSelector" in peer for peer in rule["from"])
        metrics_rule = _named("NetworkPolicy", "fupin-worker-metrics")["spec"]["ingress"][0]
        assert [p["namespaceSelector"]["matchLabels"] for p in metrics_rule["from"]] == [
            {"kubernetes.io/metadata.name": "monitoring"}
        ]

    def test_every_pod_is_covered_by_the_default_deny(self) -> None:
        for doc in _workloads():
            assert doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "fupin"


class TestCompose:
    @staticmethod
    def _services() -> dict[str, Any]:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        assert set(compose) <= {"services", "volumes", "networks", "x-fupin-common", "x-fupin-app-env", "x-fupin-image"}
        return compose["services"]  # type: ignore[no-any-return]

    def test_the_five_services_with_real_commands_and_the_pinned_image(self) -> None:
        services = self._services()
        assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
        assert services["postgres"]["image"] == "postgres:16"
        assert services["redis"]["image"] == "redis:7"
        for name in ("migrate", "api", "worker"):
            svc = services[name]
            assert svc["image"] == IMAGE
            assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
            assert (ROOT / svc["build"]["dockerfile"]).exists()
            _check_command(svc["command"])
        assert services["migrate"]["command"] == ["fupin", "migrate"]

    def test_only_migrate_gets_the_owner_and_api_and_worker_the_app_role(self) -> None:
        services = self._services()
        fields = {f"FUPIN_{name.upper()}" for name in Settings.model_fields}
        owner_user = re.search(r"POSTGRES_USER: (\w+)", (ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        assert owner_user is not None
        migrate = services["migrate"]["environment"]
        assert migrate["FUPIN_DATABASE_URL"].startswith(f"postgresql+asyncpg://{owner_user.group(1)}:")
        for name in ("api", "worker"):
            env = services[name]["environment"]
            assert set(env) <= fields
            assert "FUPIN_DATABASE_URL" not in env
            assert "FUPIN_DB_APP_PASSWORD" not in env
            assert env["FUPIN_APP_DATABASE_URL"].startswith(f"postgresql+asyncpg://{env['FUPIN_DB_APP_ROLE']}:")
            assert {"FUPIN_REDIS_URL", "FUPIN_JWT_SECRET", "FUPIN_BANK_SECRET_KEY", "FUPIN_AUDIT_CHECKPOINT_KEY"} <= set(env)
        assert "FUPIN_BANK_SECRET_KEY" in migrate

    def test_compose_defaults_start_in_development_and_are_refused_in_production(self) -> None:
        """The `${VAR:-default}` keys are the public development ones: fine by default, refused when the
        operator switches FUPIN_ENVIRONMENT to production without setting them."""
        services = self._services()
        for name in ("api", "worker"):
            env = {k: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", str(v)) for k, v in services[name]["environment"].items()}
            keys = {k.removeprefix("FUPIN_").lower(): v for k, v in env.items() if k.startswith("FUPIN_")}
            settings = Settings(**{k: v for k, v in keys.items() if k in Settings.model_fields})
            assert settings.environment == "development"
            require_secure(settings, process=name)
            with pytest.raises(InsecureSettings, match=r"FUPIN_JWT_SECRET.*FUPIN_BANK_SECRET_KEY.*FUPIN_AUDIT_CHECKPOINT"):
                require_secure(settings.model_copy(update={"environment": "production"}), process=name)

    def test_restart_policies_healthchecks_and_order(self) -> None:
        services = self._services()
        for name in ("postgres", "redis", "api", "worker"):
            assert services[name]["restart"] == "unless-stopped"
            assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
        assert services["migrate"]["restart"].startswith("on-failure")
        assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
        for name in ("api", "worker"):
            assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert services[name]["read_only"] is True
            assert services[name]["tmpfs"] == ["/tmp"]
        assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    def test_readme_uses_docker_compose_v2(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        assert "docker compose up" in readme
        assert "docker-compose up" not in readme
        assert "docker-compose up" not in (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
