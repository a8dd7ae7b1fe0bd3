"""docs/metrics.md lists exactly the metrics each process registers: name, type and labels."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

import courier.consumer.metrics  # noqa: F401  (registers the consumer kit's metrics)
from courier.broker.metrics import BrokerMetrics
from courier.lake.metrics import LakeMetrics
from courier.relay.metrics import RelayMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_ROW = re.compile(r"^\| `(?P<name>courier_\w+)` \| (?P<type>\w+) \|(?P<labels>[^|]*)\| .+\|$")

Metric = tuple[str, str, frozenset[str]]

SECTIONS: dict[str, Callable[[], tuple[CollectorRegistry, str]]] = {
    "Relay": lambda: (RelayMetrics(mode="log").registry, "courier_relay_"),
    "Broker": lambda: (BrokerMetrics().registry, "courier_broker_"),
    "Lake sink": lambda: (LakeMetrics().registry, "courier_lake_"),
    "Consumer kit": lambda: (REGISTRY, "courier_consumer_"),
}


def documented() -> dict[str, set[Metric]]:
    """Section title -> the metrics its table lists."""
    sections: dict[str, set[Metric]] = {}
    current: set[Metric] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), set())
            continue
        match = _ROW.match(line)
        if match and current is not None:
            labels = frozenset(re.findall(r"`(\w+)`", match["labels"]))
            current.add((match["name"], match["type"], labels))
    return sections


def registered(registry: CollectorRegistry, prefix: str) -> set[Metric]:
    """Every metric object in ``registry`` whose name starts with ``prefix``."""
    found: set[Metric] = set()
    # prometheus_client keeps no public list of a registry's collectors with their labels.
    for collector in list(registry._collector_to_names):
        if not isinstance(collector, MetricWrapperBase) or not collector._name.startswith(prefix):
            continue
        name = collector._name + ("_total" if collector._type == "counter" else "")
        found.add((str(name), str(collector._type), frozenset(collector._labelnames)))
    return found


@pytest.mark.parametrize("section", SECTIONS)
def test_documented_metrics_are_the_registered_ones(section: str) -> None:
    registry, prefix = SECTIONS[section]()
    assert documented().get(section, set()) == registered(registry, prefix)


def test_names_follow_the_conventions() -> None:
    for metrics in documented().values():
        for name, kind, _ in metrics:
            assert name.endswith("_total") == (kind == "counter"), name
            if kind == "histogram":
                assert name.endswith("_seconds") or name.endswith("_bytes"), name


def test_every_section_has_a_table() -> None:
    sections = documented()
    assert all(sections.get(title) for title in SECTIONS), sorted(sections)
