"""The broker's Prometheus metrics (served by :mod:`courier.observability.metrics_server`).

Every metric, its type, labels and meaning: ``docs/metrics.md`` (a test keeps the two equal).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_E2E_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class BrokerMetrics:
    """Every broker metric in one registry of its own (several brokers may share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_read = Counter(
            "courier_broker_events_read",
            "Records read from Kafka (distribution and retry topics), by consumer and topic.",
            ["consumer", "topic"],
            registry=r,
        )
        self.deliveries = Counter(
            "courier_broker_deliveries",
            "gRPC delivery calls by consumer, method and outcome (status name, lower case).",
            ["consumer", "method", "outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "courier_broker_delivery_seconds",
            "Duration of one gRPC delivery call.",
            ["consumer", "method"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "courier_broker_in_flight",
            "Events read from Kafka and not yet done (delivered or handed off and acked).",
            ["consumer"],
            registry=r,
        )
        self.retries = Counter(
            "courier_broker_retries",
            "Retries: in_memory (a call repeated after backoff), retry_topic (hand-offs acked).",
            ["consumer", "kind"],
            registry=r,
        )
        self.dlq_writes = Counter(
            "courier_broker_dlq_writes",
            "Events written to the consumer's DLQ topic and acknowledged by Kafka.",
            ["consumer", "status"],
            registry=r,
        )
        self.kafka_write_failures = Counter(
            "courier_broker_kafka_write_failures",
            "Retry/DLQ writes that Kafka refused; each is written again, progress waits.",
            ["consumer"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "courier_broker_breaker_state",
            "Circuit breaker of the consumer: 0 closed, 1 half-open, 2 open.",
            ["consumer"],
            registry=r,
        )
        self.lag = Gauge(
            "courier_broker_consumer_lag",
            "Records of a partition not yet done: high watermark minus committable offset.",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.end_to_end = Histogram(
            "courier_broker_end_to_end_latency_seconds",
            "Event creation time (ce_time) to its successful delivery to one method.",
            ["consumer", "method"],
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.commits = Counter(
            "courier_broker_committed_offsets",
            "Offset commits that moved a partition forward.",
            ["consumer"],
            registry=r,
        )
