"""Helpers for the lake tests: records as Kafka hands them out, events, lake files on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Address, Package

from courier.events import EventEnvelope, uuid7
from courier.lake.buffers import SegmentBuffer
from courier.lake.decode import PayloadDecoder
from courier.lake.files import SegmentName, segment_path
from courier.lake.parquet_writer import write_parquet_durably
from courier.lake.records import lake_row

DELIVERED = "packages.v1.PackageDelivered"
_DECODER = PayloadDecoder.for_generated_code()


@dataclass
class Record:
    """The part of ``confluent_kafka.Message`` the sink reads, for unit tests without Kafka."""

    topic_: str
    partition_: int
    offset_: int
    value_: bytes | None
    key_: bytes | None = None
    headers_: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes | None]]:
        return self.headers_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.timestamp_ms)


def delivered_message(n: int) -> PackageDelivered:
    """A PackageDelivered whose fields all depend on ``n``."""
    return PackageDelivered(
        package=Package(
            id=f"pkg-{n}",
            tracking_code=f"BR{n:09d}",
            weight_grams=100 + n,
            recipient=Address(name=f"Recipient {n}", city="São Paulo", country_code="BR"),
        ),
        received_by=f"person {n}",
    )


def delivered_event(topic: str, n: int, moment: datetime | None = None) -> EventEnvelope:
    """An envelope as the relay publishes it, carrying :func:`delivered_message`."""
    return EventEnvelope(
        id=str(uuid7()),
        type=DELIVERED,
        source="lake-tests",
        time=moment or datetime.now(UTC),
        topic=topic,
        key=f"pkg-{n}",
        payload=delivered_message(n).SerializeToString(),
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


def record_of(event: EventEnvelope, partition: int, offset: int) -> Record:
    """The Kafka record of ``event`` at ``partition``/``offset``."""
    headers: list[tuple[str, bytes | None]] = list(event.kafka_headers())
    return Record(event.topic, partition, offset, event.payload, event.kafka_key(), headers)


def write_segment(
    root: Path,
    topic: str,
    partition: int,
    offsets: Sequence[int],
    day: date | None = None,
) -> Path:
    """Write a lake file holding one event per offset (as the sink would), return its path.

    Each event's id is :func:`stable_id` of its record, as a re-read of the record would be.
    """
    moment = datetime.combine(day or date(2026, 1, 1), datetime.min.time(), UTC)
    buffer = SegmentBuffer(topic, partition, moment.date(), 0.0)
    for offset in offsets:
        event = replace(
            delivered_event(topic, offset, moment), id=stable_id(topic, partition, offset)
        )
        buffer.append(lake_row(record_of(event, partition, offset), _DECODER), offset)
    name = SegmentName(topic, partition, buffer.first, buffer.last)
    path = segment_path(root, name, buffer.day)
    write_parquet_durably(buffer.table(), path)
    return path


def stable_id(topic: str, partition: int, offset: int) -> str:
    """A deterministic event id per record, so rewrites of one offset carry the same id."""
    return f"{topic}/{partition}/{offset}"
