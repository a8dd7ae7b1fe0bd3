"""Helpers for testing code that writes to the outbox, against a real Postgres and Kafka.

::

    with RelayThread(database_url, bootstrap_servers, table="orders_outbox", slot="t1"):
        place_order(...)                       # your code: build_event(...).save(...)
        records = read_topic(bootstrap_servers, "orders.placed", count=1)

``RelayThread`` runs the log-based relay in the test process and drops its slot and
publication on exit, so a test leaves no WAL pinned behind.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg2
from confluent_kafka import Consumer, TopicPartition

from courier.outbox.table import create_table_statements
from courier.relay.logical import LogicalRelay, LogicalRelayConfig
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import KafkaPublisher


@dataclass(frozen=True)
class ConsumedRecord:
    """One Kafka record as read back: everything contract 2 talks about."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` as text, or None."""
        found = [v for k, v in self.headers if k == name]
        return found[-1].decode("utf-8") if found else None


class RelayThread:
    """The log-based relay on a background thread; a context manager.

    On exit it stops the relay (waiting for acks and confirming the slot) and, unless
    ``keep_slot``, drops the slot and the publication.
    """

    def __init__(
        self,
        database_url: str,
        bootstrap_servers: str,
        *,
        table: str,
        slot: str,
        publication: str | None = None,
        keep_slot: bool = False,
    ) -> None:
        self.config = LogicalRelayConfig(
            database_url=database_url,
            table=table,
            slot=slot,
            publication=publication or f"{slot}_pub",
            cleanup_after=None,
            feedback_interval=1.0,
        )
        self.metrics = RelayMetrics(mode="log")
        self.relay = LogicalRelay(self.config, KafkaPublisher(bootstrap_servers), self.metrics)
        self.keep_slot = keep_slot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"relay-{slot}", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.relay.run(self._stop)
        except BaseException as exc:  # surfaced by stop() in the test's thread
            self.error = exc

    def start(self, timeout: float = 30.0) -> RelayThread:
        """Create the slot (so later commits are captured), start streaming, wait until live."""
        self.relay.ensure_slot()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.metrics.healthy:
            if self.error is not None or not self._thread.is_alive():
                raise RuntimeError(f"relay did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("relay did not start streaming in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the relay; re-raise whatever made it fail."""
        self._stop.set()
        self._thread.join(timeout=60)
        if not self.keep_slot:
            self.relay.drop_slot()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RelayThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    count: int | None = None,
    timeout: float = 30.0,
    settle: float = 0.0,
) -> list[ConsumedRecord]:
    """Read ``topic`` from the beginning until ``count`` records (or ``timeout``) are seen.

    Each (partition, offset) is returned once: two records with the same event id are two
    writes to Kafka, never the consumer reading one record twice.

    With ``settle`` > 0, keep reading that many seconds after reaching ``count``, so a test can
    see records that should not be there.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"courier-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    records: list[ConsumedRecord] = []
    seen: set[tuple[int | None, int | None]] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        settled_at: float | None = None
        while time.monotonic() < deadline:
            if count is not None and len(records) >= count:
                if settled_at is None:
                    settled_at = time.monotonic() + settle
                if time.monotonic() >= settled_at:
                    break
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            position = (message.partition(), message.offset())
            if position in seen:
                continue  # re-read after a rebalance (no committed offsets): not a duplicate
            seen.add(position)
            records.append(_consumed(message, topic))
    finally:
        consumer.close()
    return records


def _consumed(message: Any, topic: str) -> ConsumedRecord:
    headers = []
    for name, value in message.headers() or []:
        raw = value if isinstance(value, bytes) else (value or "").encode()
        headers.append((str(name), raw))
    return ConsumedRecord(
        topic=message.topic() or topic,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=tuple(headers),
    )


def end_offsets(bootstrap_servers: str, topic: str, partitions: int = 1) -> list[int]:
    """The high-water mark of each partition of ``topic`` (records ever written)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "courier-offsets"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


@contextlib.contextmanager
def postgres_outbox_table(database_url: str, name: str) -> Iterator[str]:
    """A fresh outbox table ``name`` in Postgres for the block (yields its name), dropped after."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in create_table_statements("postgresql", name):
                cur.execute(statement)
        yield name
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
    finally:
        conn.close()
