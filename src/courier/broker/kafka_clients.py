"""Short-lived Kafka clients for the operator commands (``topics ensure``, ``dlq ...``).

librdkafka prints every failed connection attempt to stderr; these clients send its log to
the ``courier.kafka`` logger instead (silent unless logging is configured), and every call
that talks to Kafka has a timeout, so a dead cluster is one clear :class:`KafkaUnavailable`
message, not a screen of retries or a hang.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

_log = logging.getLogger("courier.kafka")
_log.addHandler(logging.NullHandler())
_log.propagate = False

DEFAULT_TIMEOUT = 10.0


class KafkaUnavailable(RuntimeError):
    """Kafka did not answer within the timeout, or refused the request."""


def _common(bootstrap_servers: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap_servers, "logger": _log}


def admin_client(bootstrap_servers: str) -> AdminClient:
    """An AdminClient whose log goes to the ``courier.kafka`` logger."""
    return AdminClient(_common(bootstrap_servers))


def reader(bootstrap_servers: str, group_id: str) -> Consumer:
    """A consumer for reading assigned partitions: never commits on its own, no auto-create.

    ``group_id`` only matters for :meth:`Consumer.committed` / :meth:`Consumer.commit`.
    """
    return Consumer(
        {
            **_common(bootstrap_servers),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            "session.timeout.ms": 10_000,
        }
    )


def idempotent_producer(bootstrap_servers: str) -> Producer:
    """A producer that writes each record once and in order (acks=all, idempotence on)."""
    return Producer(
        {
            **_common(bootstrap_servers),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 30_000,
        }
    )


def existing_topics(client: AdminClient | Consumer, timeout: float = DEFAULT_TIMEOUT) -> set[str]:
    """Names of the topics in the cluster; KafkaUnavailable if it does not answer in time."""
    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable_message(exc, timeout)) from None
    return set(metadata.topics)


def partitions_of(consumer: Consumer, topic: str, timeout: float = DEFAULT_TIMEOUT) -> list[int]:
    """The partition ids of ``topic``; KafkaUnavailable if it is missing or Kafka is down."""
    try:
        metadata = consumer.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable_message(exc, timeout)) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        code = found.error.code() if found is not None and found.error is not None else None
        if code in (None, KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise KafkaUnavailable(
                f'topic "{topic}" does not exist (create it: courier topics ensure --config ...)'
            )
        raise KafkaUnavailable(f'topic "{topic}": {found.error.str()}')  # type: ignore[union-attr]
    return sorted(found.partitions)


def watermarks(
    consumer: Consumer, topic: str, partition: int, timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, int]:
    """(low, high) offsets of one partition: the first record and one past the last."""
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable_message(exc, timeout)) from None
    return int(low), int(high)


def unreachable_message(exc: KafkaException, timeout: float) -> str:
    """One line for a request Kafka did not answer: the timeout and librdkafka's reason."""
    error = exc.args[0] if exc.args else None
    reason = error.str() if isinstance(error, KafkaError) else str(exc)
    return f"Kafka did not answer within {timeout:g}s ({reason}); is it running?"
