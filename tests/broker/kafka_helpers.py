"""Kafka and config helpers for the broker's integration tests (real Kafka, no fakes)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from courier.broker.config import BrokerConfig, parse_config
from courier.broker.kafka_clients import admin_client
from courier.broker.retry_headers import RetryState
from courier.broker.topics import ensure_topics
from courier.events import EventEnvelope, uuid7


def broker_config(consumers: dict[str, dict[str, Any]], partitions: int = 2) -> BrokerConfig:
    """A config from a Python mapping (kebab-case keys as in YAML), topics created small."""
    document = {"topics": {"partitions": partitions}, "consumers": consumers}
    return parse_config(yaml.safe_dump(document, sort_keys=False), "<test>")


def create_topics(bootstrap_servers: str, config: BrokerConfig) -> None:
    """Create the config's topics (as ``courier topics ensure`` does)."""
    ensure_topics(admin_client(bootstrap_servers), config)


def make_event(topic: str, key: str | None = None, payload: bytes | None = None) -> EventEnvelope:
    """An event as the relay publishes it (contract 2), with a traceparent."""
    event_id = str(uuid7())
    return EventEnvelope(
        id=event_id,
        type="packages.v1.PackageDelivered",
        source="tests",
        time=datetime.now(UTC),
        topic=topic,
        key=key,
        payload=payload if payload is not None else f"payload-{event_id}".encode(),
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


def produce(bootstrap_servers: str, events: Iterable[EventEnvelope]) -> list[EventEnvelope]:
    """Write ``events`` to Kafka (acks=all) and wait for every acknowledgement."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "linger.ms": 5})
    sent = list(events)
    failures: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err.str())

    for event in sent:
        while True:
            try:
                producer.produce(
                    event.topic,
                    value=event.payload,
                    key=event.kafka_key(),
                    headers=event.kafka_headers(),
                    on_delivery=report,
                )
                break
            except BufferError:
                producer.poll(0.1)
    remaining = producer.flush(30)
    assert remaining == 0 and not failures, f"produce failed: {failures or remaining}"
    return sent


def produce_raw(
    bootstrap_servers: str, topic: str, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    """Write one record as given (for records that break the contract)."""
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    producer.produce(topic, value=value, headers=headers)
    assert producer.flush(30) == 0


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record of ``topic`` now in Kafka, read without a group commit."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"reader-{uuid7()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = list(metadata.topics[topic].partitions)
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                if message.error() is not None:
                    continue
                records.append(message)
                if message.offset() >= ends.get(message.partition(), 0) - 1:
                    ends.pop(message.partition(), None)
        return records
    finally:
        consumer.close()


def header(message: Any, name: str) -> str | None:
    """The last value of header ``name`` of a confluent-kafka message, as text."""
    found = None
    for key, value in message.headers() or ():
        if key == name:
            found = None if value is None else value.decode()
    return found


def retry_state(message: Any) -> RetryState:
    state = RetryState.from_headers(message.headers())
    assert state is not None
    return state


def committed(bootstrap_servers: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets of ``topic`` (partition -> offset; -1001 if none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def write_config(
    path: Any, consumers: dict[str, dict[str, Any]], partitions: int = 2
) -> BrokerConfig:
    """Write the config as YAML to ``path`` (for the CLI) and return it parsed."""
    document = {"topics": {"partitions": partitions}, "consumers": consumers}
    text = yaml.safe_dump(document, sort_keys=False)
    path.write_text(text)
    return parse_config(text, str(path))
