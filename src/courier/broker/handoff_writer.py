"""Writes retry and DLQ records, and says when Kafka has acknowledged each one.

An idempotent producer (``acks=all``) per consumer loop. A record counts as written only in
its delivery report; the caller completes the event's offset from ``on_acked`` and not
before, so no offset is committed past an un-acked hand-off. A write that Kafka refuses is
written again after a pause, forever: progress on that partition stops (its window fills
and it is paused), the event is never dropped. A fatal producer error stops the broker.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer

from courier.broker.handoff import HandOff
from courier.broker.metrics import BrokerMetrics

logger = logging.getLogger("courier.broker")
_kafka_log = logging.getLogger("courier.kafka")

REWRITE_DELAYS = (0.5, 1.0, 2.0, 5.0)


class FatalKafkaError(RuntimeError):
    """The producer cannot go on (a fatal idempotence error): the broker must stop."""


def handoff_producer(bootstrap_servers: str) -> Producer:
    """The idempotent producer for retry and DLQ writes."""
    return Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 30_000,
            "logger": _kafka_log,
        }
    )


class HandOffWriter:
    """Produces :class:`~courier.broker.handoff.HandOff` records; call :meth:`poll` often."""

    def __init__(
        self,
        producer: Producer,
        consumer: str,
        metrics: BrokerMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self._metrics = metrics
        self._clock = clock
        self._rewrites: list[tuple[float, int, HandOff, Callable[[], None], int]] = []
        self._seq = itertools.count()
        self.pending = 0

    def write(self, record: HandOff, on_acked: Callable[[], None], failures: int = 0) -> None:
        """Produce ``record``; ``on_acked`` runs (inside :meth:`poll`) once Kafka has it."""

        def report(err: KafkaError | None, msg: Message) -> None:
            self.pending -= 1
            if err is None:
                self._count(record)
                on_acked()
                return
            if err.fatal():
                raise FatalKafkaError(f"Kafka producer failed for good: {err.str()}")
            if self._metrics is not None:
                self._metrics.kafka_write_failures.labels(self._consumer).inc()
            delay = REWRITE_DELAYS[min(failures, len(REWRITE_DELAYS) - 1)]
            logger.error(
                "retry/DLQ write refused by Kafka; writing it again, partition progress waits",
                extra={
                    "consumer": self._consumer,
                    "topic": record.topic,
                    "event_id": _event_id(record),
                    "error": err.str(),
                    "retry_in_seconds": delay,
                },
            )
            heapq.heappush(
                self._rewrites,
                (self._clock() + delay, next(self._seq), record, on_acked, failures + 1),
            )

        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list[tuple[str, str | bytes | None]](record.headers),
                    on_delivery=report,
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let reports drain
        self.pending += 1

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports (``on_acked`` callbacks) and due rewrites."""
        self._producer.poll(timeout)
        now = self._clock()
        while self._rewrites and self._rewrites[0][0] <= now:
            _, _, record, on_acked, failures = heapq.heappop(self._rewrites)
            self.write(record, on_acked, failures)

    @property
    def waiting(self) -> int:
        """Writes not acknowledged yet (produced or waiting to be written again)."""
        return self.pending + len(self._rewrites)

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every write to be acknowledged."""
        deadline = self._clock() + timeout
        while self.waiting and self._clock() < deadline:
            self.poll(min(0.1, max(0.0, deadline - self._clock())))

    def _count(self, record: HandOff) -> None:
        if self._metrics is None:
            return
        if record.kind == "retry":
            self._metrics.retries.labels(self._consumer, "retry_topic").inc()
        else:
            self._metrics.dlq_writes.labels(self._consumer, record.state.last_status).inc()


def _event_id(record: HandOff) -> str | None:
    for name, value in record.headers:
        if name == "ce_id" and value is not None:
            return value.decode("utf-8", errors="replace")
    return None
