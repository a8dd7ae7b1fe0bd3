"""The shared local stack really serves Kafka and logical replication."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg2
import pytest
from confluent_kafka import Consumer, Producer
from psycopg2.extras import LogicalReplicationConnection

from courier.devstack.config import StackConfig
from courier.events import EventEnvelope, uuid7

pytestmark = pytest.mark.integration


def test_event_with_cloudevents_headers_round_trips_through_kafka(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    topic = unique("devstack.roundtrip")
    sent = EventEnvelope(
        id=str(uuid7()),
        type="packages.v1.PackageDelivered",
        source="tests",
        time=datetime.now(UTC),
        topic=topic,
        payload=b"\x0a\x03abc",
        key="pkg-1",
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    producer.produce(topic, value=sent.payload, key=sent.kafka_key(), headers=sent.kafka_headers())
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": unique("g"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.error() is None
        received = EventEnvelope.from_kafka(
            message.topic(), message.key(), message.value(), message.headers()
        )
    finally:
        consumer.close()
    assert received == sent


def test_logical_replication_slot_streams_an_insert(
    stack: StackConfig, unique: Callable[[str], str]
) -> None:
    table, slot = unique("devstack_changes"), unique("devstack_slot")
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone() == ("logical",)
        cur.execute(f"CREATE TABLE {table} (id int primary key, note text)")
        cur.execute(f"CREATE PUBLICATION {slot} FOR TABLE {table}")
    replication = psycopg2.connect(
        stack.database_url, connection_factory=LogicalReplicationConnection
    )
    try:
        rcur = replication.cursor()
        rcur.create_replication_slot(slot, output_plugin="pgoutput")
        with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (1, 'hello from the outbox')")
        rcur.start_replication(
            slot_name=slot, decode=False, options={"proto_version": "1", "publication_names": slot}
        )
        found = False
        for _ in range(200):
            message = rcur.read_message()
            if message is None:
                time.sleep(0.05)
                continue
            rcur.send_feedback(flush_lsn=message.data_start)
            if message.payload[:1] == b"I" and b"hello from the outbox" in message.payload:
                found = True
                break
        assert found, "the insert never came through the replication slot"
    finally:
        replication.close()
        with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            cur.execute(f"DROP PUBLICATION {slot}")
            cur.execute(f"DROP TABLE {table}")
