"""Prometheus metrics of a consumer service, in the process's default registry.

The app's own metrics (same registry) are served beside them by the kit's ``/metrics``
endpoint (:mod:`courier.observability.metrics_server`). Every metric, its type, labels and
meaning: ``docs/metrics.md`` (a test keeps the two equal).
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from prometheus_client import Counter, Histogram

from courier.consumer.interceptors import HandledCall

HANDLED = Counter(
    "courier_consumer_handled_total",
    "Events answered by the consumer's gRPC methods, by method and outcome (status, lower case).",
    ["method", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "courier_consumer_handler_seconds",
    "Time spent handling one event, decoding included.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_LATENCY = Histogram(
    "courier_consumer_end_to_end_latency_seconds",
    "Event creation time to the end of its successful handling (end-to-end latency).",
    ["method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)


def record_call(call: HandledCall) -> None:
    """Observer for the interceptors: count the call, time it, and age the event on success."""
    HANDLED.labels(method=call.method, outcome=call.code.name.lower()).inc()
    HANDLER_SECONDS.labels(method=call.method).observe(call.seconds)
    if call.code in (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS):
        event = call.event
        if event is not None:
            age = (datetime.now(UTC) - event.time).total_seconds()
            END_TO_END_LATENCY.labels(method=call.method).observe(max(age, 0.0))
