"""The Grafana dashboard and the Prometheus alert rules are well formed and use only metrics the app exports.

The exported names are collected from the API's and the worker's registries, so renaming a metric
without updating deploy/ fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from fupin_api import metrics as api_metrics
from fupin_worker import metrics as worker_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# Named in an alert rule before the app exports it (none today; keep the mechanism for the next one).
PENDING: set[str] = set()

_TARGET = {
    "type": "object",
    "required": ["refId", "expr"],
    "properties": {"refId": {"type": "string", "minLength": 1}, "expr": {"type": "string", "minLength": 1},
                   "legendFormat": {"type": "string"}},
}
_GRID = {
    "type": "object",
    "required": ["x", "y", "w", "h"],
    "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0},
                   "w": {"type": "integer", "minimum": 1, "maximum": 24}, "h": {"type": "integer", "minimum": 1}},
}
# The parts of Grafana's dashboard model (schemaVersion 39) that an import needs.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "properties": {"list": {"type": "array"}}},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer"},
                    "type": {"enum": ["row", "timeseries", "stat", "gauge", "table", "bargauge"]},
                    "title": {"type": "string", "minLength": 1},
                    "gridPos": _GRID,
                    "targets": {"type": "array", "items": _TARGET},
                },
                "if": {"properties": {"type": {"not": {"const": "row"}}}},
                "then": {"required": ["targets", "datasource"], "properties": {"targets": {"minItems": 1}}},
            },
        },
    },
}

_SUFFIXES = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
             "summary": ["_sum", "_count", "_created"], "gauge": [""], "info": ["_info"]}


def _exported() -> set[str]:
    names: set[str] = set()
    for registry in (api_metrics.REGISTRY, worker_metrics.REGISTRY):
        for family in registry.collect():
            names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, [""])}
            names |= {s.name for s in family.samples}
    return names


_FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "clamp_min",
    "clamp_max", "by", "without", "on", "ignoring", "and", "or", "unless", "abs", "topk", "bottomk", "offset",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: label matchers, ranges, strings and grouping clauses removed."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    words = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {w for w in words if w not in _FUNCTIONS_AND_KEYWORDS and not re.fullmatch(r"\d+e\d+|e\d+", w)}


def _dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "fupin.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


class TestDashboard:
    def test_the_dashboard_is_valid(self) -> None:
        dash = _dashboard()
        jsonschema_rs.validate(DASHBOARD_SCHEMA, dash)
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids))

    def test_panels_do_not_overlap(self) -> None:
        taken: set[tuple[int, int]] = set()
        for p in _dashboard()["panels"]:
            g = p["gridPos"]
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert g["x"] + g["w"] <= 24, p["title"]
            assert not cells & taken, p["title"]
            taken |= cells

    def test_panels_use_only_metrics_the_app_exports(self) -> None:
        exported = _exported()
        used: set[str] = set()
        for panel in _dashboard()["panels"]:
            for target in panel.get("targets", []):
                names = metric_names(target["expr"])
                assert names, target["expr"]
                assert names <= exported, (panel["title"], names - exported)
                used |= names
        # the operations questions of issue #19 each have a panel
        for wanted in ("fupin_db_pool_waiting", "fupin_job_runs", "fupin_job_runs_oldest_age_seconds",
                       "fupin_job_execution_seconds_bucket", "fupin_job_failures_total", "fupin_sweeper_redelivered_total",
                       "fupin_bank_events_total", "fupin_login_failures_total", "fupin_login_lockouts_total",
                       "fupin_http_request_seconds_bucket", "process_resident_memory_bytes"):
            assert wanted in used, wanted

    @pytest.mark.parametrize(("expr", "names"), [
        ('sum by (le, route) (rate(fupin_http_request_seconds_bucket{route="/x"}[5m]))', {"fupin_http_request_seconds_bucket"}),
        ("max(a_total) / clamp_min(sum(b), 1e-9) > 0.02 and c > 0", {"a_total", "b", "c"}),
    ])
    def test_metric_names_are_read_from_promql(self, expr: str, names: set[str]) -> None:
        assert metric_names(expr) == names


class TestAlertRules:
    def test_rules_are_well_formed(self) -> None:
        for rule in _rules():
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"Fupin[A-Za-z0-9]+", rule["alert"])
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            assert rule["expr"].count("(") == rule["expr"].count(")")

    def test_the_four_asked_for_alerts_exist(self) -> None:
        names = {r["alert"] for r in _rules()}
        assert {"FupinJobStuck", "FupinSettlementFailing", "FupinAuditSealLag", "FupinHigh5xxRate"} <= names

    def test_rules_use_exported_metrics_and_the_pending_seal_lag_only(self) -> None:
        exported = _exported()
        assert not PENDING & exported, "exported now: drop it from PENDING"
        for rule in _rules():
            names = metric_names(rule["expr"])
            assert names, rule["alert"]
            assert names <= exported | PENDING, (rule["alert"], names - exported)
