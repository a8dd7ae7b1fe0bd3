"""Table-less outbox on Postgres: the event goes into the WAL only, as a logical message.

``build_event(msg).save(conn, table_less=True)`` runs
``pg_logical_emit_message(true, 'courier.outbox', <envelope>)`` in the caller's transaction:
the message is decoded only if the transaction commits, in commit order with everything
else, and nothing is stored in a table (no cleanup needed). The log-based relay publishes it
exactly like an outbox row. Debezium's Outbox Event Router does not read these messages, and
the polling relay cannot see them: use it only with ``courier relay run`` in log mode.

The message content is a JSON object with the contract-1 fields (``payload`` in base64).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from courier.events import EventEnvelope, format_time

MESSAGE_PREFIX = "courier.outbox"
EMIT_SQL = "SELECT pg_logical_emit_message(true, %s, %s)"


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """The logical message content for one event."""
    return json.dumps(
        {
            "id": envelope.id,
            "topic": envelope.topic,
            "key": envelope.key,
            "type": envelope.type,
            "source": envelope.source,
            "payload": base64.b64encode(envelope.payload).decode("ascii"),
            "headers": dict(envelope.headers),
            "created_at": format_time(envelope.time),
        },
        separators=(",", ":"),
    ).encode("utf-8")


def decode_row(content: bytes) -> dict[str, Any]:
    """The message content as an outbox row, for ``courier.relay.records.envelope_from_row``.

    Raises ValueError when the content is not such a message.
    """
    row = json.loads(content)
    if not isinstance(row, dict) or not isinstance(row.get("payload"), str):
        raise ValueError("not a courier.outbox message: no base64 payload")
    row["payload"] = base64.b64decode(row["payload"], validate=True)
    return row
