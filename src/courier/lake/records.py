"""One Kafka record -> one lake row (the column values, the ``date=`` day, a size estimate).

Records that are not Courier envelopes are kept, not dropped: their envelope columns are
null, every header lands in ``headers`` and ``envelope_error`` says what is wrong. Bytes
that are not UTF-8 (a key, a header value) are kept with backslash escapes (``\\xff``),
since the columns are strings.

Retry and DLQ copies written by the broker (they carry ``courier-original-topic``) are
the same events as the originals already in the lake; :func:`is_broker_copy` finds them
so the sink can skip them when it discovers topics on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from courier.events import EventEnvelope, InvalidEventHeaders
from courier.lake.decode import PayloadDecoder

BROKER_COPY_HEADER = "courier-original-topic"
UNKNOWN_DAY = date(1970, 1, 1)
_ROW_OVERHEAD = 96  # offsets, timestamps, ids: a rough per-row cost for roll-by-size

HeaderValue = bytes | str | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]


class KafkaRecord(Protocol):
    """What the sink reads from a ``confluent_kafka.Message``."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | str | None: ...
    def value(self) -> bytes | str | None: ...
    def headers(self) -> Headers | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class LakeRow:
    """The column values of one record (in :data:`courier.lake.schema.COLUMNS` order)."""

    values: tuple[object, ...]
    day: date
    size: int
    envelope_ok: bool
    decoded: bool


def is_broker_copy(headers: Headers | None) -> bool:
    """True for a record the broker copied to a retry or DLQ topic."""
    if isinstance(headers, Mapping):
        return BROKER_COPY_HEADER in headers
    return any(name == BROKER_COPY_HEADER for name, _ in headers or ())


def lake_row(record: KafkaRecord, decoder: PayloadDecoder) -> LakeRow:
    """The lake row for ``record``; never raises for any content of the record."""
    topic = record.topic() or ""
    partition = record.partition() or 0
    offset = record.offset() or 0
    key = _as_bytes(record.key())
    value = _as_bytes(record.value())
    raw_headers = record.headers() or []
    headers = list(raw_headers.items()) if isinstance(raw_headers, Mapping) else list(raw_headers)
    ts_type, ts_ms = record.timestamp()
    kafka_ms = ts_ms if ts_type != 0 and ts_ms >= 0 else None
    try:
        envelope = EventEnvelope.from_kafka(topic, key, value, headers)
    except InvalidEventHeaders as exc:
        return _invalid_row(topic, partition, offset, key, value, headers, kafka_ms, str(exc))
    decoded = decoder.decode(envelope.type, envelope.payload)
    extra = list(envelope.headers.items())
    values = (
        envelope.id,
        envelope.type,
        envelope.source,
        envelope.time,
        envelope.key,
        topic,
        partition,
        offset,
        kafka_ms,
        extra,
        envelope.payload,
        decoded.json,
        None,
        decoded.error,
    )
    size = _ROW_OVERHEAD + len(envelope.payload) + len(decoded.json or "")
    size += sum(len(k) + len(v) for k, v in extra) + len(envelope.type) + len(envelope.source)
    day = envelope.time.astimezone(UTC).date()
    return LakeRow(values, day, size, True, decoded.json is not None)


def _invalid_row(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, HeaderValue]],
    kafka_ms: int | None,
    problem: str,
) -> LakeRow:
    pairs = [(name, _text(raw) if raw is not None else "") for name, raw in headers]
    values = (
        None,
        None,
        None,
        None,
        None if key is None else _text(key),
        topic,
        partition,
        offset,
        kafka_ms,
        pairs,
        value,
        None,
        problem or "not an event envelope",
        "not an event envelope",
    )
    day = UNKNOWN_DAY if kafka_ms is None else datetime.fromtimestamp(kafka_ms / 1000, UTC).date()
    size = _ROW_OVERHEAD + len(value or b"") + sum(len(k) + len(v) for k, v in pairs)
    return LakeRow(values, day, size, False, False)


def _as_bytes(raw: bytes | str | None) -> bytes | None:
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")
