"""pgoutput decoding, on messages encoded here byte by byte from the protocol's layout."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.relay import pgoutput


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(final_lsn: int, micros: int, xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, micros, xid)


def commit(commit_lsn: int, end_lsn: int, micros: int) -> bytes:
    return b"C" + struct.pack(">BQQq", 0, commit_lsn, end_lsn, micros)


def relation(oid: int, namespace: str, name: str, columns: list[str]) -> bytes:
    body = (
        struct.pack(">I", oid) + _s(namespace) + _s(name) + b"d" + struct.pack(">H", len(columns))
    )
    for column in columns:
        body += struct.pack(">B", 0) + _s(column) + struct.pack(">Ii", 25, -1)
    return b"R" + body


def insert(oid: int, values: list[str | None]) -> bytes:
    body = struct.pack(">I", oid) + b"N" + struct.pack(">H", len(values))
    for value in values:
        if value is None:
            body += b"n"
        else:
            raw = value.encode()
            body += b"t" + struct.pack(">I", len(raw)) + raw
    return b"I" + body


def test_begin_and_commit() -> None:
    decoded = pgoutput.decode(begin(0x16B3748, 1_000_000, 42))
    assert decoded == pgoutput.Begin(
        final_lsn=0x16B3748, commit_time=datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), xid=42
    )
    done = pgoutput.decode(commit(100, 180, 0))
    assert isinstance(done, pgoutput.Commit)
    assert (done.commit_lsn, done.end_lsn) == (100, 180)


def test_relation_and_insert_with_null_and_unicode() -> None:
    rel = pgoutput.decode(relation(16385, "public", "courier_outbox", ["id", "key", "topic"]))
    assert rel == pgoutput.Relation(16385, "public", "courier_outbox", ("id", "key", "topic"))
    row = pgoutput.decode(insert(16385, ["0193", None, "pacotes.entregues.são"]))
    assert row == pgoutput.Insert(16385, ("0193", None, "pacotes.entregues.são"))


@pytest.mark.parametrize("kind", list("UDTOY"))
def test_other_messages_are_ignored(kind: str) -> None:
    assert pgoutput.decode(kind.encode() + b"\0\0\0\0") == pgoutput.Ignored(kind)


@pytest.mark.parametrize(
    "broken",
    [b"", b"B\0\0", b"Z", insert(1, ["abc"])[:-1], b"R" + struct.pack(">I", 1) + b"no-nul"],
)
def test_malformed_messages_raise(broken: bytes) -> None:
    with pytest.raises(pgoutput.PgoutputError):
        pgoutput.decode(broken)


@given(st.lists(st.one_of(st.none(), st.text()), max_size=12))
def test_insert_values_roundtrip(values: list[str | None]) -> None:
    decoded = pgoutput.decode(insert(7, values))
    assert isinstance(decoded, pgoutput.Insert)
    assert list(decoded.values) == values


def test_logical_message() -> None:
    content = b'{"id": 1}'
    raw = b"M" + struct.pack(">BQ", 1, 77) + _s("courier.outbox") + struct.pack(">I", len(content))
    decoded = pgoutput.decode(raw + content)
    assert decoded == pgoutput.LogicalMessage(True, 77, "courier.outbox", content)
