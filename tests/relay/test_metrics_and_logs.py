"""/metrics and /healthz, and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from courier.observability.logging import JsonFormatter, configure_logging
from courier.observability.metrics_server import MetricsServer
from courier.relay.metrics import RelayMetrics


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_health_endpoints() -> None:
    metrics = RelayMetrics(mode="log")
    server = MetricsServer(metrics.registry, lambda: metrics.healthy, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz")[0] == 503
        metrics.set_healthy(True)
        assert _get(base + "/healthz") == (200, "ok\n")
        metrics.acked("shop.orders", datetime.now(UTC) - timedelta(seconds=0.2))
        metrics.slot_lag_bytes.set(1234)
        status, text = _get(base + "/metrics")
        assert status == 200
        assert 'courier_relay_events_published_total{topic="shop.orders"} 1.0' in text
        assert 'courier_relay_lag_seconds_count{topic="shop.orders"} 1.0' in text
        assert 'courier_relay_lag_seconds_bucket{le="0.1",topic="shop.orders"} 0.0' in text
        assert "courier_relay_slot_lag_bytes 1234.0" in text
        assert _get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_json_lines_carry_extra_fields() -> None:
    record = logging.LogRecord(
        "courier.relay", logging.INFO, __file__, 1, "relay streaming", None, None
    )
    record.slot = "s1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "relay streaming"
    assert line["level"] == "info"
    assert line["slot"] == "s1"
    assert line["time"].endswith("+00:00")


def test_not_a_tty_means_json() -> None:
    stream = io.StringIO()
    restore = configure_logging(stream=stream, log_format=None)
    try:
        logging.getLogger("courier.relay").info("hello", extra={"n": 1})
    finally:
        restore()
    assert json.loads(stream.getvalue())["n"] == 1
    assert logging.getLogger("courier").propagate  # restored
