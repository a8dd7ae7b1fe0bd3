"""The shared /metrics and /healthz endpoint."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from courier.observability.metrics_server import (
    DEFAULT_METRICS_HOST,
    MetricsServer,
    MetricsServerError,
)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_serves_metrics_and_health_that_follows_the_process() -> None:
    registry = CollectorRegistry()
    Counter("courier_test_things", "Things.", ["topic"], registry=registry).labels("t").inc(3)
    healthy = [False]
    with MetricsServer(registry, lambda: healthy[0], port=0) as server:
        assert server.host == DEFAULT_METRICS_HOST == "127.0.0.1"
        status, ctype, text = _get(server.url)
        assert status == 200 and ctype.startswith("text/plain; version=")
        assert 'courier_test_things_total{topic="t"} 3.0' in text
        base = server.url.removesuffix("/metrics")
        assert _get(base + "/healthz")[::2] == (503, "unavailable\n")
        healthy[0] = True
        assert _get(base + "/healthz")[::2] == (200, "ok\n")
        assert _get(base + "/healthz?verbose=1")[0] == 200
        assert _get(base + "/other")[0] == 404


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            MetricsServer(CollectorRegistry(), port=port)


def test_stop_releases_the_port() -> None:
    server = MetricsServer(CollectorRegistry(), port=0).start()
    port = server.port
    server.stop()
    MetricsServer(CollectorRegistry(), port=port).stop()  # binds again: the port is free
