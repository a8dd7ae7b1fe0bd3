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

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

DEFAULT_METRICS_HOST = "127.0.0.1"
"""Where ``/metrics`` listens unless ``--metrics-host`` says otherwise."""


class MetricsServerError(OSError):
    """The metrics port cannot be bound (taken, or an address this host does not have)."""


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` from a daemon thread; :meth:`start`, :meth:`stop`.

    ``healthy`` is called on each ``/healthz`` request, so the answer follows the process.
    Raises :class:`MetricsServerError` when the address cannot be bound.
    """

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        healthy: Callable[[], bool] = lambda: True,
        host: str = DEFAULT_METRICS_HOST,
        port: int = 0,
    ) -> None:
        self._registry = registry
        self._healthy = healthy
        try:
            self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {reason}") from exc
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="courier-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
