"""A decoder for PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

Only what the relay needs: Begin, Commit, Relation, Insert and logical Messages are decoded;
Update, Delete, Truncate, Origin and Type are recognised and ignored. Values stay in
Postgres' text output form (``\\x..`` for bytea), which :mod:`courier.relay.records` reads.

Layout reference: "Logical Replication Message Formats" in the PostgreSQL manual. All
integers are big-endian; strings are NUL-terminated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Begin:
    """A transaction starts; ``final_lsn`` is its commit record's LSN."""

    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    """A transaction ends; confirm ``end_lsn`` once everything in it is safely delivered."""

    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class Relation:
    """The column layout of a table, sent before its first row in a session."""

    oid: int
    namespace: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Insert:
    """A new row: text values (None for NULL) in the relation's column order."""

    relation_oid: int
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class LogicalMessage:
    """``pg_logical_emit_message`` output (sent when the ``messages`` option is on)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


@dataclass(frozen=True)
class Ignored:
    """A message kind the relay does not act on (update, delete, truncate, origin, ...)."""

    kind: str


Message = Begin | Commit | Relation | Insert | LogicalMessage | Ignored


class PgoutputError(ValueError):
    """A message that does not follow the pgoutput protocol."""


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise PgoutputError("message truncated")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def byte(self) -> str:
        if self.pos >= len(self.data):
            raise PgoutputError("message truncated")
        value = chr(self.data[self.pos])
        self.pos += 1
        return value

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PgoutputError("unterminated string")
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def raw(self, length: int) -> bytes:
        if self.pos + length > len(self.data):
            raise PgoutputError("message truncated")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value


def pg_time(micros: int) -> datetime:
    """A Postgres timestamp (microseconds since 2000-01-01 UTC) as an aware datetime."""
    return _PG_EPOCH + timedelta(microseconds=micros)


def decode(payload: bytes) -> Message:
    """Decode one pgoutput message."""
    if not payload:
        raise PgoutputError("empty message")
    reader = _Reader(payload)
    kind = reader.byte()
    if kind == "B":
        final_lsn = reader.take(">Q")
        when = pg_time(reader.take(">q"))
        return Begin(final_lsn=final_lsn, commit_time=when, xid=reader.take(">I"))
    if kind == "C":
        reader.take(">B")  # flags, unused
        commit_lsn = reader.take(">Q")
        end_lsn = reader.take(">Q")
        return Commit(
            commit_lsn=commit_lsn, end_lsn=end_lsn, commit_time=pg_time(reader.take(">q"))
        )
    if kind == "R":
        oid = reader.take(">I")
        namespace = reader.string()
        name = reader.string()
        reader.byte()  # replica identity setting
        columns = []
        for _ in range(reader.take(">H")):
            reader.take(">B")  # flags (part of the key)
            columns.append(reader.string())
            reader.take(">I")  # type oid
            reader.take(">i")  # type modifier
        return Relation(oid=oid, namespace=namespace, name=name, columns=tuple(columns))
    if kind == "I":
        oid = reader.take(">I")
        if reader.byte() != "N":
            raise PgoutputError("insert without a new tuple")
        return Insert(relation_oid=oid, values=_tuple(reader))
    if kind == "M":
        transactional = bool(reader.take(">B") & 1)
        lsn = reader.take(">Q")
        prefix = reader.string()
        content = reader.raw(reader.take(">I"))
        return LogicalMessage(transactional=transactional, lsn=lsn, prefix=prefix, content=content)
    if kind in "UDTOYSEcAsr":
        return Ignored(kind=kind)
    raise PgoutputError(f"unknown pgoutput message type {kind!r}")


def _tuple(reader: _Reader) -> tuple[str | None, ...]:
    values: list[str | None] = []
    for _ in range(reader.take(">H")):
        kind = reader.byte()
        if kind == "n":
            values.append(None)
        elif kind == "t":
            values.append(reader.raw(reader.take(">I")).decode("utf-8"))
        elif kind == "u":
            # An unchanged TOASTed value only occurs in updates, which the outbox never has.
            raise PgoutputError("unchanged TOAST value in an insert")
        else:
            raise PgoutputError(f"unsupported tuple value kind {kind!r} (binary mode is off)")
    return tuple(values)
