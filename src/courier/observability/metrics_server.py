"""The one HTTP endpoint every long-running Courier process serves its metrics on.

``GET /metrics`` answers the Prometheus text format of a registry; ``GET /healthz`` answers
``200 ok`` while the process says it is healthy and ``503 unavailable`` otherwise. Anything
else is a 404. The server runs on a daemon thread, so it never keeps a process alive.

It binds to the loopback interface unless told otherwise (``--metrics-host 0.0.0.0`` in a
container whose scraper lives outside): metrics name consumers, topics and methods, which is
nothing to publish to a whole network by default.

>>> from prometheus_client import CollectorRegistry
>>> server = MetricsServer(CollectorRegistry(), lambda: True, port=0).start()
>>> server.port > 0
True
>>> server.stop()
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from courier.observability.http_server import BackgroundHttpServer

DEFAULT_METRICS_HOST = "127.0.0.1"
"""Where ``/metrics`` listens unless ``--metrics-host`` says otherwise."""


class MetricsServerError(OSError):
    """The metrics port cannot be bound (taken, or an address this host does not have)."""


class MetricsServer(BackgroundHttpServer):
    """Serves ``/metrics`` and ``/healthz`` from a daemon thread; :meth:`start`, :meth:`stop`.

    ``healthy`` is called on each ``/healthz`` request, so the answer follows the process.
    Raises :class:`MetricsServerError` when the address cannot be bound.
    """

    serves = "metrics"
    bind_error = MetricsServerError
    thread_name = "courier-metrics"
    url_path = "/metrics"

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        healthy: Callable[[], bool] = lambda: True,
        host: str = DEFAULT_METRICS_HOST,
        port: int = 0,
    ) -> None:
        self._registry = registry
        self._healthy = healthy
        super().__init__(host, port, self._handler_class())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, generate_latest(owner._registry))
                elif path == "/healthz":
                    ok = owner._healthy()
                    self._answer(
                        200 if ok else 503, "text/plain", b"ok\n" if ok else b"unavailable\n"
                    )
                else:
                    self._answer(404, "text/plain", b"not found\n")

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape every few seconds would drown the process's own logs

        return Handler
