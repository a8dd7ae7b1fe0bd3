"""Prometheus metrics of a consumer service, and the small HTTP endpoint that serves them.

Metrics (labels in braces):

- ``courier_consumer_handled_total{method,code}``: calls answered, by gRPC status code name;
- ``courier_consumer_handler_seconds{method}``: handler duration, decoding included;
- ``courier_consumer_event_age_seconds{method}``: event creation (``ce-time``) to the end of a
  successful handling, i.e. the end-to-end latency as the consumer sees it.

``/metrics`` serves them in the Prometheus text format; ``/healthz`` answers 200 while the
gRPC server is serving and 503 once it is shutting down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from courier.consumer.interceptors import HandledCall

HANDLED = Counter(
    "courier_consumer_handled_total",
    "Events answered by the consumer's gRPC methods, by method and status code.",
    ["method", "code"],
)
HANDLER_SECONDS = Histogram(
    "courier_consumer_handler_seconds",
    "Time spent handling one event, decoding included.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_AGE_SECONDS = Histogram(
    "courier_consumer_event_age_seconds",
    "Event creation time to the end of its successful handling (end-to-end latency).",
    ["method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)


def record_call(call: HandledCall) -> None:
    """Observer for the interceptors: count the call, time it, and age the event on success."""
    HANDLED.labels(method=call.method, code=call.code.name).inc()
    HANDLER_SECONDS.labels(method=call.method).observe(call.seconds)
    if call.code in (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS):
        event = call.event
        if event is not None:
            age = (datetime.now(UTC) - event.time).total_seconds()
            EVENT_AGE_SECONDS.labels(method=call.method).observe(max(age, 0.0))


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a port of their own, served from a daemon thread.

    ``healthy`` is asked on each ``/healthz`` request, so the answer follows the gRPC server.
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        healthy: Callable[[], bool] = lambda: True,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._healthy = healthy
        self._registry = registry
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="courier-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, generate_latest(owner._registry))
                elif path == "/healthz":
                    ok = owner._healthy()
                    self._answer(200 if ok else 503, "text/plain", b"ok\n" if ok else b"stopping\n")
                else:
                    self._answer(404, "text/plain", b"not found\n")

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would drown the service's own logs

        return Handler
