"""The lake sink's Prometheus metrics (served by :mod:`courier.observability.metrics_server`).

Every metric, its type, labels and meaning: ``docs/metrics.md`` (a test keeps the two equal).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class LakeMetrics:
    """The sink's metrics in their own registry (tests run several sinks in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_written = Counter(
            "courier_lake_events_written", "Rows written to durable files.", ["topic"], registry=r
        )
        self.files_written = Counter(
            "courier_lake_files_written", "Parquet files written.", ["topic"], registry=r
        )
        self.bytes_written = Counter(
            "courier_lake_bytes_written", "Parquet bytes written.", ["topic"], registry=r
        )
        self.invalid_records = Counter(
            "courier_lake_invalid_records",
            "Rows that are not event envelopes (kept with envelope_error).",
            ["topic"],
            registry=r,
        )
        self.undecoded = Counter(
            "courier_lake_undecoded_payloads",
            "Envelopes whose payload could not be decoded to JSON (unknown type, bad bytes).",
            ["topic"],
            registry=r,
        )
        self.skipped = Counter(
            "courier_lake_records_skipped",
            "Broker retry/DLQ copies skipped (their originals are in the lake).",
            ["topic"],
            registry=r,
        )
        self.flush_seconds = Histogram(
            "courier_lake_flush_seconds",
            "Time to write, fsync and rename one file.",
            ["topic"],
            buckets=_FLUSH_BUCKETS,
            registry=r,
        )
        self.write_lag = Histogram(
            "courier_lake_write_lag_seconds",
            "Per file: from its oldest event's ce_time to the file being durable.",
            ["topic"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.buffered = Gauge(
            "courier_lake_buffered_events", "Rows waiting in open buffers.", registry=r
        )
        self.committed_offset = Gauge(
            "courier_lake_committed_offset",
            "Last offset committed to Kafka.",
            ["topic", "partition"],
            registry=r,
        )
