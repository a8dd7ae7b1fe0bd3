"""The event envelope and its exact mapping to Kafka headers (DESIGN.md contract 2).

A Kafka record carries the serialized protobuf message as its value, the aggregate key as
its key, and the envelope as CloudEvents headers in binary mode::

    ce_specversion=1.0  ce_id=<uuid7>  ce_source=<service>  ce_type=<proto full name>
    ce_time=<RFC 3339>  content-type=application/protobuf  [traceparent, tracestate, ...]

Nothing in Courier needs to decode the payload to route or deliver an event.
"""

from __future__ import annotations

import os
import re
import time as _time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"

H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_TIME = "ce_time"
H_CONTENT_TYPE = "content-type"

ENVELOPE_HEADERS = frozenset({H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_TIME, H_CONTENT_TYPE})

_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class InvalidEventHeaders(ValueError):
    """A Kafka record's headers are not a Courier (CloudEvents binary-mode) envelope.

    Raised by :meth:`EventEnvelope.from_kafka`; ``problems`` lists every defect found, so a
    dead-letter entry can say all that is wrong at once.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A time-ordered UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    >>> uuid7().version
    7
    """
    ms = int(_time.time() * 1000) if unix_ms is None else unix_ms
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"timestamp out of range for UUIDv7: {ms}")
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 62 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, fraction trimmed of trailing zeros (as Debezium prints it).

    >>> format_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
    '2026-01-02T03:04:05.12Z'
    """
    if moment.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime (sub-microsecond digits dropped)."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})", text
    )
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if offset in ("Z", "z") else offset
    parsed = datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}")
    return parsed.astimezone(UTC)


def _frozen(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(headers or {}))


@dataclass(frozen=True)
class EventEnvelope:
    """One event: the metadata around a serialized protobuf message.

    ``headers`` holds the extra headers (``traceparent``, ``tracestate``, the producer's own);
    envelope header names (``ce_*``, ``content-type``) are not allowed there.
    """

    id: str
    type: str
    source: str
    time: datetime
    topic: str
    payload: bytes
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _envelope_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "headers", _frozen(self.headers))

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The record headers, in a fixed order: the envelope first, then the extra headers."""
        pairs = [
            (H_SPECVERSION, SPEC_VERSION),
            (H_ID, self.id),
            (H_SOURCE, self.source),
            (H_TYPE, self.type),
            (H_TIME, format_time(self.time)),
            (H_CONTENT_TYPE, CONTENT_TYPE),
            *sorted(self.headers.items()),
        ]
        return [(name, value.encode("utf-8")) for name, value in pairs]

    def kafka_key(self) -> bytes | None:
        """The record key: the aggregate key in UTF-8, or no key."""
        return None if self.key is None else self.key.encode("utf-8")

    @classmethod
    def from_kafka(
        cls,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | str | None]] | None,
    ) -> EventEnvelope:
        """Read an envelope back from a Kafka record; :class:`InvalidEventHeaders` if it is not one.

        Headers outside the envelope (``traceparent``, broker bookkeeping) land in ``headers``;
        when a name repeats, the last value wins, as in most Kafka clients' ``lastHeader``.
        """
        decoded: dict[str, str] = {}
        problems: list[str] = []
        for name, raw in headers or ():
            if raw is None:
                decoded[name] = ""
                continue
            try:
                decoded[name] = raw if isinstance(raw, str) else raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"header {name!r} is not UTF-8")
        for required in (H_ID, H_SOURCE, H_TYPE, H_TIME):
            if not decoded.get(required):
                problems.append(f"missing header {required!r}")
        if decoded.get(H_SPECVERSION, SPEC_VERSION) != SPEC_VERSION:
            problems.append(f"unsupported {H_SPECVERSION} {decoded[H_SPECVERSION]!r}")
        moment: datetime | None = None
        if decoded.get(H_TIME):
            try:
                moment = parse_time(decoded[H_TIME])
            except ValueError as exc:
                problems.append(str(exc))
        if value is None:
            problems.append("record has no value (tombstone)")
        try:
            text_key = None if key is None else key.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("record key is not UTF-8")
            text_key = None
        if problems or moment is None or value is None:
            raise InvalidEventHeaders(problems)
        return cls(
            id=decoded[H_ID],
            type=decoded[H_TYPE],
            source=decoded[H_SOURCE],
            time=moment,
            topic=topic,
            key=text_key,
            payload=value,
            headers={k: v for k, v in decoded.items() if k not in ENVELOPE_HEADERS},
        )


def _envelope_problems(envelope: EventEnvelope) -> list[str]:
    problems = []
    for name in ("id", "type", "source", "topic"):
        if not getattr(envelope, name):
            problems.append(f"event {name} must not be empty")
    if envelope.time.tzinfo is None:
        problems.append("event time must be timezone-aware")
    for name in envelope.headers:
        if name in ENVELOPE_HEADERS:
            problems.append(f"extra header {name!r} would override the envelope")
        elif not _HEADER_NAME.match(name):
            problems.append(f"header name {name!r} is not a valid header name")
    return problems
