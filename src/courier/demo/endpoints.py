"""The demo's metrics endpoints, scraped at the end: what each process reports after the run."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

# process name in the demo -> its port key in DemoLayout.ports
METRICS_PORTS = {
    "relay": "relay-metrics",
    "broker": "broker-metrics",
    "lake sink": "lake-metrics",
    "service-a": "service-a-metrics",
    "service-b": "service-b-metrics",
}


@dataclass(frozen=True)
class EndpointReport:
    process: str
    url: str
    families: int
    nonzero_families: tuple[str, ...]
    error: str | None = None


def metric_families(url: str, timeout: float) -> list[Metric]:
    """The metric families a /metrics ``url`` serves; OSError when it does not answer."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode("utf-8")
    return list(text_string_to_metric_families(text))


def scrape(process: str, url: str) -> EndpointReport:
    """Courier's metric families at ``url`` and which of them have a non-zero sample."""
    try:
        found = metric_families(url, timeout=5)
    except OSError as exc:
        return EndpointReport(process, url, 0, (), error=str(exc))
    families = [f for f in found if f.name.startswith("courier_")]
    nonzero = tuple(
        sorted(f.name for f in families if any(sample.value != 0 for sample in f.samples))
    )
    return EndpointReport(process, url, len(families), nonzero)


def scrape_all(ports: dict[str, int]) -> list[EndpointReport]:
    return [
        scrape(process, f"http://127.0.0.1:{ports[key]}/metrics")
        for process, key in METRICS_PORTS.items()
        if key in ports
    ]
