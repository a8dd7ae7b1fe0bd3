"""The relay's Prometheus metrics (served by :mod:`courier.observability.metrics_server`).

Every metric, its type, labels and meaning: ``docs/metrics.md`` (a test keeps the two equal).
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class RelayMetrics:
    """The relay's metrics in their own registry (several relays may share a test process)."""

    def __init__(self, mode: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.mode = mode
        self.published = Counter(
            "courier_relay_events_published",
            "Events acknowledged by Kafka.",
            ["topic"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "courier_relay_lag_seconds",
            "Time from the outbox transaction's commit (poll mode: created_at) to Kafka's ack.",
            ["topic"],
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.slot_lag_bytes = Gauge(
            "courier_relay_slot_lag_bytes",
            "WAL bytes the replication slot holds back (log mode).",
            registry=self.registry,
        )
        self.invalid_rows = Counter(
            "courier_relay_invalid_rows",
            "Outbox rows that could not be turned into events and were skipped.",
            registry=self.registry,
        )
        self.confirmed_lsn = Gauge(
            "courier_relay_confirmed_lsn",
            "Last LSN confirmed to the replication slot (log mode).",
            registry=self.registry,
        )
        self._healthy = False

    def acked(self, topic: str, started: datetime) -> None:
        """One event acknowledged; ``started`` is its commit (or creation) time."""
        self.published.labels(topic=topic).inc()
        self.lag.labels(topic=topic).observe(max(0.0, time.time() - started.timestamp()))

    def set_healthy(self, healthy: bool) -> None:
        """The relay loop is (or is no longer) connected and running."""
        self._healthy = healthy

    @property
    def healthy(self) -> bool:
        return self._healthy
