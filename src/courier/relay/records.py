"""One outbox row -> one :class:`~courier.events.EventEnvelope`, whatever wrote the row.

Writers store the contract's columns in slightly different shapes: Postgres gives ``uuid``
and ``timestamptz``; Django and SQLAlchemy on SQLite/MySQL give 32-hex UUIDs and naive UTC
datetimes or strings; pgoutput gives everything as text (``\\x...`` for bytea). This module
reads all of them into the same envelope, so every relay mode publishes the same record.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from courier.events import ENVELOPE_HEADERS, EventEnvelope

log = logging.getLogger("courier.relay")

_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PG_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,6})?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)


class InvalidOutboxRow(ValueError):
    """An outbox row that cannot become an event (a required column empty or malformed).

    ``row_id`` is the row's id as read (possibly None), for the log line.
    """

    def __init__(self, row_id: object, problem: str) -> None:
        super().__init__(f"outbox row {row_id!r}: {problem}")
        self.row_id = row_id


def envelope_from_row(row: Mapping[str, Any]) -> EventEnvelope:
    """Build the envelope for one outbox row (a mapping from column name to value).

    Extra headers that are not valid header names, or that would shadow the envelope's
    ``ce_*`` headers, are dropped with a warning: they cannot be sent as written.
    """
    row_id = row.get("id")
    try:
        event_id = normalize_uuid(row_id)
        created = parse_timestamp(row.get("created_at"))
        payload = to_bytes(row.get("payload"))
        headers = _clean_headers(event_id, parse_headers(row.get("headers")))
        return EventEnvelope(
            id=event_id,
            type=_text(row.get("type")),
            source=_text(row.get("source")),
            time=created,
            topic=_text(row.get("topic")),
            key=None if row.get("key") is None else _text(row.get("key")),
            payload=payload,
            headers=headers,
        )
    except (ValueError, TypeError) as exc:
        raise InvalidOutboxRow(row_id, str(exc)) from exc


def normalize_uuid(value: Any) -> str:
    """The canonical 36-character form of a UUID given as UUID, 32/36-char text or 16 bytes."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return str(uuid.UUID(bytes=raw)) if len(raw) == 16 else str(uuid.UUID(raw.decode()))
    if isinstance(value, str):
        return str(uuid.UUID(value))
    raise ValueError(f"id is not a UUID: {value!r}")


def to_bytes(value: Any) -> bytes:
    """``bytea``/BLOB as bytes; pgoutput's text form ``\\x0a0b`` is decoded."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str) and value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    raise ValueError(f"payload is not binary: {type(value).__name__}")


def parse_headers(value: Any) -> dict[str, str]:
    """The ``headers`` column (jsonb dict, or JSON text/bytes) as a str -> str mapping."""
    if value is None or value == "":
        return {}
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8")
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError("headers must be a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def parse_timestamp(value: Any) -> datetime:
    """``created_at`` as an aware UTC datetime; naive values are taken to be UTC.

    Accepts datetimes and the text forms Postgres (``2026-01-02 03:04:05.12+00``), SQLite
    and ISO 8601 writers produce.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        match = _PG_TIMESTAMP.match(value.strip())
        if not match:
            raise ValueError(f"created_at is not a timestamp: {value!r}")
        day, clock, fraction, offset = match.groups()
        if offset in (None, "Z"):
            offset = "+00:00"
        elif len(offset) == 3:
            offset += ":00"
        elif ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        moment = datetime.fromisoformat(f"{day}T{clock}{(fraction or '.').ljust(7, '0')}{offset}")
    else:
        raise ValueError(f"created_at is not a timestamp: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _clean_headers(event_id: str, headers: dict[str, str]) -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        if name in ENVELOPE_HEADERS or not _HEADER_NAME.match(name):
            log.warning(
                "dropping outbox header that cannot be sent",
                extra={"event_id": event_id, "header": name},
            )
            continue
        kept[name] = value
    return kept
