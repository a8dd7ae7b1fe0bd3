"""A read-only picture of a running broker, for the admin page's consumers table.

Read from the admin server's threads while the broker runs, without stopping it:

- the consumer's config (topics, retry and DLQ topics, target, batch size);
- its breaker state (:class:`~courier.broker.breaker.CircuitBreaker` takes its own lock);
- lag and in-flight from the broker's Prometheus gauges (each takes its own lock);
- assigned partitions from each consumer loop's :class:`PartitionControl`: the loop thread
  owns that state, so it is copied in one C-level step (``list(dict.values())``, atomic under
  the GIL) and only plain ints and bools are read from the copies;
- recent failed calls from the :class:`~courier.observability.admin.failures.FailureLog`.

The broker's hot path does none of this work: it only happens when the page asks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from courier.broker.breaker import BreakerState
from courier.broker.config import ConsumerConfig
from courier.observability.admin.failures import FailureLog

if TYPE_CHECKING:
    from courier.broker.consumer_loop import ConsumerLoop
    from courier.broker.runner import Broker

BREAKER_NAMES = {
    BreakerState.CLOSED: "closed",
    BreakerState.HALF_OPEN: "half-open",
    BreakerState.OPEN: "open",
}


def gauge_values(gauge: Gauge) -> dict[tuple[str, ...], float]:
    """Label values -> value of every series of ``gauge`` (label order as declared)."""
    found: dict[tuple[str, ...], float] = {}
    for metric in gauge.collect():
        for sample in metric.samples:
            found[tuple(sample.labels.values())] = sample.value
    return found


def broker_snapshot(broker: Broker) -> dict[str, Any]:
    """The consumers of ``broker``: config, breaker, partitions, lag, in-flight, failures."""
    in_flight = gauge_values(broker.metrics.in_flight)
    lag = gauge_values(broker.metrics.lag)
    consumers = []
    for consumer in broker.config.consumers.values():
        loops = [loop for loop in broker.loops if loop.config.name == consumer.name]
        breaker = broker.breakers.get(consumer.name)
        state = None if breaker is None else BREAKER_NAMES[breaker.state]
        consumers.append(
            consumer_view(
                consumer,
                breaker=state,
                in_flight=int(in_flight.get((consumer.name,), 0)),
                lag=lag,
                loops=loops,
                failures=broker.failures,
            )
        )
    return {
        "generated_at": time.time(),
        "healthy": broker.healthy(),
        "consumers": consumers,
    }


def consumer_view(
    consumer: ConsumerConfig,
    *,
    breaker: str | None,
    in_flight: int,
    lag: dict[tuple[str, ...], float],
    loops: Iterable[ConsumerLoop],
    failures: FailureLog,
) -> dict[str, Any]:
    """One row of the consumers table (JSON-ready)."""
    partitions: list[dict[str, Any]] = []
    threads: list[dict[str, Any]] = []
    for loop in loops:
        error = loop.error
        threads.append(
            {
                "label": loop.subscription.label,
                "group": loop.subscription.group_id,
                "alive": loop.is_alive(),
                "error": None if error is None else f"{type(error).__name__}: {error}",
            }
        )
        partitions.extend(_partitions(loop, consumer.name, lag))
    partitions.sort(key=lambda p: (p["kind"] != "distribution", p["topic"], p["partition"]))
    return {
        "name": consumer.name,
        "target": consumer.target,
        "group": consumer.group_id,
        "topics": list(consumer.topics),
        "methods": {d.topic: [str(m) for m in d.methods] for d in consumer.distribution},
        "retry_topic": consumer.retry_topic,
        "dlq_topic": consumer.dlq_topic,
        "batch_size": consumer.batch_size,
        "max_retry_attempts": consumer.max_retry_attempts,
        "breaker": breaker,
        "in_flight": in_flight,
        "lag": int(sum(p["lag"] or 0 for p in partitions)),
        "partitions": partitions,
        "loops": threads,
        "failures_total": failures.total(consumer.name),
        "failures": [f.as_json() for f in failures.recent(consumer.name)],
    }


def _partitions(
    loop: ConsumerLoop, consumer: str, lag: dict[tuple[str, ...], float]
) -> list[dict[str, Any]]:
    control = loop.control
    if control is None or not loop.is_alive():
        return []
    parts = list(control.partitions.values())  # one atomic copy; the loop thread owns the dict
    paused = set(control.paused)
    rows = []
    for part in parts:
        value = lag.get((consumer, part.topic, str(part.partition)))
        rows.append(
            {
                "topic": part.topic,
                "partition": part.partition,
                "kind": "retry" if part.is_retry else "distribution",
                "in_flight": part.tracker.in_flight,
                "calls": part.calls,
                "lag": None if value is None else int(value),
                "paused": (part.topic, part.partition) in paused,
                "committed": part.last_committed,
            }
        )
    return rows
