"""Read a DLQ topic from its start (or given offsets) up to its current end.

A throwaway reader: partitions are assigned, not subscribed, so no consumer group joins and
nothing is committed; reading stops at the high watermarks taken when it started, so a DLQ
that keeps growing does not keep the command running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from courier.broker.kafka_clients import (
    DEFAULT_TIMEOUT,
    KafkaUnavailable,
    partitions_of,
    watermarks,
)
from courier.broker.retry_headers import InvalidRetryHeaders, RetryState
from courier.events import H_ID, H_SOURCE, H_TIME, H_TYPE, parse_time

HeaderList = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class DlqRecord:
    """One record of a DLQ topic: where it sits, its bytes, and what its headers say.

    ``state`` is None when the bookkeeping headers are missing or malformed (then
    ``state_problem`` says why); such a record can be shown but not replayed.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: HeaderList
    state: RetryState | None
    state_problem: str | None = None

    @classmethod
    def from_message(cls, message: Message) -> DlqRecord:
        """Build from a consumed confluent-kafka message."""
        raw: list[tuple[str, str | bytes | None]] = list(message.headers() or [])  # type: ignore[arg-type]
        headers: HeaderList = tuple(
            (name, value.encode() if isinstance(value, str) else value) for name, value in raw
        )
        state: RetryState | None = None
        problem: str | None = None
        try:
            state = RetryState.from_headers(headers)
            if state is None:
                problem = "no courier retry headers"
        except InvalidRetryHeaders as exc:
            problem = str(exc)
        kind, stamp = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            timestamp_ms=stamp if kind != 0 and stamp >= 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
            key=message.key(),  # type: ignore[arg-type]
            value=message.value(),  # type: ignore[arg-type]
            headers=headers,
            state=state,
            state_problem=problem,
        )

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` as text (undecodable bytes replaced), or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = "" if value is None else value.decode("utf-8", errors="replace")
        return found

    @property
    def event_id(self) -> str | None:
        """The CloudEvents id (``ce_id``)."""
        return self.header(H_ID)

    @property
    def event_type(self) -> str | None:
        """The protobuf type name (``ce_type``)."""
        return self.header(H_TYPE)

    @property
    def event_source(self) -> str | None:
        """The producing service (``ce_source``)."""
        return self.header(H_SOURCE)

    @property
    def event_time(self) -> datetime | None:
        """When the event happened (``ce_time``), if present and well-formed."""
        text = self.header(H_TIME)
        try:
            return None if text is None else parse_time(text)
        except ValueError:
            return None

    @property
    def dead_lettered_ms(self) -> int | None:
        """When it was dead-lettered: its header, else the record's timestamp."""
        if self.state is not None and self.state.dead_lettered_at_ms is not None:
            return self.state.dead_lettered_at_ms
        return self.timestamp_ms

    @property
    def dead_lettered_at(self) -> datetime | None:
        """:attr:`dead_lettered_ms` as an aware UTC datetime."""
        ms = self.dead_lettered_ms
        return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)

    @property
    def position(self) -> str:
        """``partition:offset`` in the DLQ topic."""
        return f"{self.partition}:{self.offset}"


def read_records(
    consumer: Consumer,
    topic: str,
    start: Mapping[int, int] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[DlqRecord]:
    """Every record of ``topic`` from ``start`` (partition -> offset; default: the beginning)
    up to the high watermarks as they are now, partition by partition in arrival order.

    Raises KafkaUnavailable if the topic is missing or Kafka stops answering for ``timeout``.
    """
    ends: dict[int, int] = {}
    assignment: list[TopicPartition] = []
    for partition in partitions_of(consumer, topic, timeout):
        low, high = watermarks(consumer, topic, partition, timeout)
        begin = max(low, (start or {}).get(partition, low))
        if begin < high:
            ends[partition] = high
            assignment.append(TopicPartition(topic, partition, begin))
    if not assignment:
        return
    consumer.assign(assignment)
    try:
        yield from _read_until(consumer, ends, timeout)
    finally:
        consumer.unassign()


def _read_until(consumer: Consumer, ends: dict[int, int], timeout: float) -> Iterator[DlqRecord]:
    remaining = set(ends)
    deadline = time.monotonic() + timeout
    while remaining:
        messages = consumer.consume(num_messages=500, timeout=0.5)
        if not messages:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"Kafka sent nothing for {timeout:g}s while reading partitions "
                    f"{sorted(remaining)} to their end"
                )
            continue
        deadline = time.monotonic() + timeout
        for message in messages:
            partition = message.partition() or 0
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(partition)
                    continue
                raise KafkaUnavailable(f"reading the DLQ failed: {error.str()}")
            offset = message.offset() or 0
            if partition not in remaining or offset >= ends[partition]:
                remaining.discard(partition)
                continue
            yield DlqRecord.from_message(message)
            if offset >= ends[partition] - 1:
                remaining.discard(partition)
