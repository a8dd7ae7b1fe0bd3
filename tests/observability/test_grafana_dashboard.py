"""docs/grafana/courier.json parses and queries only documented metrics and their labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .test_metrics_docs import documented

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "courier.json"
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")
_TARGET_LABELS = {"job", "instance", "le"}  # added by Prometheus or by histograms


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs: list[str] = []
    for panel in dashboard["panels"]:
        for nested in [panel, *panel.get("panels", [])]:
            exprs += [t["expr"] for t in nested.get("targets", [])]
    return exprs


def _metric(series: str, known: set[str]) -> str:
    if series in known:
        return series
    for suffix in _SERIES_SUFFIXES:
        if series.endswith(suffix) and series.removesuffix(suffix) in known:
            return series.removesuffix(suffix)
    return series


def test_dashboard_uses_only_documented_metrics_and_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    labels_of = {name: set(labels) for s in documented().values() for name, _, labels in s}
    exprs = _exprs(dashboard)
    assert exprs, "no queries"
    used: set[str] = set()
    for expr in exprs:
        names = {_metric(s, set(labels_of)) for s in re.findall(r"\bcourier_\w+", expr)}
        unknown = names - set(labels_of)
        assert not unknown, f"{expr}: not in docs/metrics.md: {sorted(unknown)}"
        used |= names
        allowed = set().union(*(labels_of[n] for n in names)) | _TARGET_LABELS
        grouped = {
            label.strip()
            for clause in re.findall(r"\bby \(([^)]*)\)", expr)
            for label in clause.split(",")
        }
        stray = (grouped | set(re.findall(r"(\w+)\s*=~?", expr))) - allowed
        assert not stray, f"{expr}: labels {sorted(stray)}"
    for required in (
        "courier_broker_end_to_end_latency_seconds",
        "courier_broker_deliveries_total",
        "courier_relay_lag_seconds",
        "courier_consumer_handled_total",
        "courier_lake_write_lag_seconds",
    ):
        assert required in used, required


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "consumer"} <= variables
