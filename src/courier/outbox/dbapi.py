"""``build_event(...).save(connection)`` for a plain DB-API connection (psycopg2, sqlite3)."""

from __future__ import annotations

import sqlite3
from typing import Any

from courier.events import EventEnvelope
from courier.outbox import wal
from courier.outbox.table import Dialect, insert_statement, row_values
from courier.settings import DEFAULT_OUTBOX_TABLE


def dialect_of_connection(connection: Any) -> Dialect:
    """Which SQL dialect a DB-API connection speaks, from its driver module."""
    if isinstance(connection, sqlite3.Connection):
        return "sqlite"
    module = type(connection).__module__
    if module.startswith("psycopg"):
        return "postgresql"
    if module.startswith(("pymysql", "MySQLdb")):
        return "mysql"
    raise TypeError(
        "save() takes nothing (Django), a SQLAlchemy Session/Connection, or a psycopg2, "
        f"sqlite3 or PyMySQL connection; got {type(connection).__module__}."
        f"{type(connection).__name__}"
    )


def in_transaction(dialect: Dialect, connection: Any) -> bool:
    """Whether the connection has (or will implicitly open) a transaction for the next write."""
    if dialect == "sqlite":
        return bool(connection.in_transaction)
    if dialect == "postgresql":
        # psycopg2 opens a transaction on the first statement unless in autocommit mode.
        return not connection.autocommit
    get = getattr(connection, "get_autocommit", None)
    return not (get() if get else False)


def save_with_dbapi(
    envelope: EventEnvelope,
    connection: Any,
    *,
    table: str | None,
    allow: bool,
    table_less: bool = False,
) -> None:
    """Insert the row on ``connection``; the caller commits."""
    from courier.outbox.builder import OutboxTransactionError

    dialect = dialect_of_connection(connection)
    if not allow and not in_transaction(dialect, connection):
        raise OutboxTransactionError(
            "build_event(...).save(connection) outside a transaction: the connection is in "
            "autocommit mode; open a transaction first or pass allow_outside_transaction=True"
        )
    if table_less and dialect != "postgresql":
        raise ValueError("table_less=True needs Postgres (pg_logical_emit_message)")
    cursor = connection.cursor()
    try:
        if table_less:
            cursor.execute(wal.EMIT_SQL, (wal.MESSAGE_PREFIX, wal.encode_envelope(envelope)))
        else:
            statement = insert_statement(dialect, table or DEFAULT_OUTBOX_TABLE)
            cursor.execute(statement, row_values(dialect, envelope))
    finally:
        cursor.close()
