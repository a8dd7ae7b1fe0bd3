"""The outbox table's DDL and INSERT (contract 1), checked on SQLite for real."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.events import EventEnvelope, uuid7
from courier.outbox.table import (
    COLUMNS,
    DIALECTS,
    InvalidTableName,
    check_table_name,
    create_table_statements,
    dialect_of,
    insert_statement,
    quote_table,
    row_values,
)


def _envelope(**changes: object) -> EventEnvelope:
    fields: dict[str, object] = {
        "id": str(uuid7()),
        "type": "shop.v1.OrderPlaced",
        "source": "shop",
        "time": datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        "topic": "shop.orders",
        "payload": b"\x0a\x03abc",
        "key": "order-1",
        "headers": {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    }
    fields.update(changes)
    return EventEnvelope(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_names_every_contract_column(dialect: str) -> None:
    ddl = "\n".join(create_table_statements(dialect, "courier_outbox"))  # type: ignore[arg-type]
    assert "IF NOT EXISTS" in ddl
    for column in COLUMNS:
        assert column in ddl


def test_postgres_ddl_has_exactly_the_contract_types() -> None:
    ddl = create_table_statements("postgresql", "courier_outbox")[0]
    for line in [
        "id uuid PRIMARY KEY",
        "topic text NOT NULL",
        "key text NULL",
        "type text NOT NULL",
        "source text NOT NULL",
        "payload bytea NOT NULL",
        "headers jsonb NOT NULL DEFAULT '{}'",
        "created_at timestamptz NOT NULL",
    ]:
        assert line in ddl


def test_mysql_quotes_the_reserved_key_column() -> None:
    assert "`key` VARCHAR" in create_table_statements("mysql", "courier_outbox")[0]
    assert "`key`" in insert_statement("mysql", "courier_outbox")


def test_sqlite_ddl_is_idempotent_and_insert_roundtrips() -> None:
    conn = sqlite3.connect(":memory:")
    for _ in range(2):
        for statement in create_table_statements("sqlite", "courier_outbox"):
            conn.execute(statement)
    envelope = _envelope()
    conn.execute(insert_statement("sqlite", "courier_outbox"), row_values("sqlite", envelope))
    row = conn.execute(
        "SELECT id, key, payload, headers, created_at FROM courier_outbox"
    ).fetchone()
    assert row[0] == envelope.id
    assert row[1] == "order-1"
    assert row[2] == b"\x0a\x03abc"
    assert '"traceparent"' in row[3]
    assert row[4].startswith("2026-01-02T03:04:05.12")


def test_null_key_is_stored_as_null() -> None:
    values = row_values("postgresql", _envelope(key=None))
    assert values[COLUMNS.index("key")] is None


@pytest.mark.parametrize(
    "bad", ["", "1table", "a;drop table x", 'x"y', "a.b.c", "schema.", "with space"]
)
def test_unsafe_table_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTableName):
        check_table_name(bad)


@given(st.text(max_size=40))
def test_a_name_is_either_refused_or_quoted_safely(name: str) -> None:
    try:
        quoted = quote_table("postgresql", name)
    except InvalidTableName:
        return
    assert quoted.count('"') in (2, 4)
    assert ";" not in quoted and " " not in quoted


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("postgresql://u@h/db", "postgresql"),
        ("postgres://u@h/db", "postgresql"),
        ("postgresql+psycopg2://u@h/db", "postgresql"),
        ("sqlite:///relative.db", "sqlite"),
        ("mysql+pymysql://u:p@h/db", "mysql"),
        ("mariadb://u@h/db", "mysql"),
    ],
)
def test_dialect_of_url(url: str, dialect: str) -> None:
    assert dialect_of(url) == dialect


def test_unknown_url_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as info:
        dialect_of("oracle://scott:tiger@h/db")
    assert "tiger" not in str(info.value)
