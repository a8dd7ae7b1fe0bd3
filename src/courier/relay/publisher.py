"""The relay's Kafka producer: idempotent, ``acks=all``, one callback per acknowledged record.

Records of one key go to one partition (murmur2, the partitioner Java clients and Kafka
Connect use, so Courier's relay and Debezium place a key on the same partition), and the
idempotent producer keeps them in send order there, retries included.

A record that Kafka finally refuses is a :class:`DeliveryFailed`: the relay stops without
confirming anything past it, and the next run sends it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from courier.events import EventEnvelope
from courier.observability.tracing import end_send_span, start_send_span

AckCallback = Callable[[], None]

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 200000,
    "compression.type": "lz4",
    "message.timeout.ms": 120000,
}


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge a record (after the producer's own retries)."""

    def __init__(self, topic: str, event_id: str, error: object) -> None:
        super().__init__(f"event {event_id} to topic {topic!r} was not delivered: {error}")
        self.topic = topic
        self.event_id = event_id


class KafkaPublisher:
    """Publish envelopes as contract-2 records; ``on_ack`` runs when Kafka acknowledged one.

    Callbacks run inside :meth:`poll` / :meth:`flush`, on the caller's thread.
    """

    def __init__(self, bootstrap_servers: str, overrides: Mapping[str, Any] | None = None) -> None:
        config = {**PRODUCER_DEFAULTS, **(overrides or {}), "bootstrap.servers": bootstrap_servers}
        self._producer = Producer(config)
        self.failure: DeliveryFailed | None = None
        self.in_flight = 0

    def publish(
        self,
        envelope: EventEnvelope,
        on_ack: AckCallback,
        while_waiting: Callable[[], None] | None = None,
    ) -> None:
        """Queue one record; waits (serving callbacks) while the local queue is full.

        ``while_waiting`` runs between waits, e.g. to keep a replication connection alive.
        """
        self.raise_if_failed()
        # The `send` span (a child of the event's stored trace context) ends at Kafka's answer.
        span = start_send_span(envelope.topic, envelope.id, envelope.type, envelope.headers)

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self.in_flight -= 1
            if span is not None:
                end_send_span(span, err, msg.partition(), msg.offset())
            if err is not None:
                if self.failure is None:
                    self.failure = DeliveryFailed(envelope.topic, envelope.id, err)
                return
            on_ack()

        headers: list[tuple[str, str | bytes | None]] = [*envelope.kafka_headers()]
        while True:
            try:
                self._producer.produce(
                    envelope.topic,
                    value=envelope.payload,
                    key=envelope.kafka_key(),
                    headers=headers,
                    on_delivery=delivered,
                )
                self.in_flight += 1
                return
            except BufferError:
                self._producer.poll(0.05)
                self.raise_if_failed()
                if while_waiting is not None:
                    while_waiting()
            except KafkaException as exc:
                if span is not None:
                    end_send_span(span, exc, None, None)
                raise DeliveryFailed(envelope.topic, envelope.id, exc) from exc

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery callbacks for up to ``timeout`` seconds."""
        self._producer.poll(timeout)
        self.raise_if_failed()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued record is acknowledged (or failed); True if none is left."""
        deadline = time.monotonic() + timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            self._producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
            self.raise_if_failed()
        return self.in_flight == 0

    def raise_if_failed(self) -> None:
        """Raise the first delivery failure seen, if any."""
        if self.failure is not None:
            raise self.failure
