"""The relay's Prometheus metrics and its ``/metrics`` + ``/healthz`` HTTP endpoint.

=====================================  =========  ==========================================
``courier_relay_events_published_total``  counter  events acknowledged by Kafka, per topic
``courier_relay_lag_seconds``             histogram  commit (log mode) or ``created_at``
                                                    (poll mode) to Kafka acknowledgement
``courier_relay_slot_lag_bytes``          gauge    WAL the slot still holds back
                                                    (``pg_current_wal_lsn() - confirmed_flush_lsn``)
``courier_relay_invalid_rows_total``      counter  outbox rows that could not become events
``courier_relay_confirmed_lsn``           gauge    last LSN confirmed to the slot
=====================================  =========  ==========================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

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
        self.lag.observe(max(0.0, time.time() - started.timestamp()))

    def set_healthy(self, healthy: bool) -> None:
        """The relay loop is (or is no longer) connected and running."""
        self._healthy = healthy

    @property
    def healthy(self) -> bool:
        return self._healthy


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text) and ``/healthz`` (200 ok / 503) on a thread."""

    def __init__(
        self, registry: CollectorRegistry, health: Callable[[], bool], host: str, port: int
    ) -> None:
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="courier-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    registry: CollectorRegistry, health: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = health()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"unavailable\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds are not news

    return Handler
