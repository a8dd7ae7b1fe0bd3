"""Table-less events: the logical message content reads back into the same envelope."""

from __future__ import annotations

import sqlite3

import pytest
from google.protobuf.wrappers_pb2 import BytesValue

from courier import build_event
from courier.outbox.wal import decode_row, encode_envelope
from courier.relay.records import envelope_from_row


def test_message_roundtrip() -> None:
    envelope = build_event(
        BytesValue(value=bytes(range(256))), key="k", topic="t.x", headers={"a": "1"}
    ).envelope
    assert envelope_from_row(decode_row(encode_envelope(envelope))) == envelope


def test_table_less_needs_postgres() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("BEGIN")
    with pytest.raises(ValueError, match="Postgres"):
        build_event(BytesValue()).save(conn, table_less=True)
