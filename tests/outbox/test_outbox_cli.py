"""``courier outbox create-table``: idempotent, and one clear line on bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from typer.testing import CliRunner

from courier.cli import app

runner = CliRunner()


def test_create_table_on_sqlite_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["outbox", "create-table", "--database-url", url])
        assert result.exit_code == 0, result.output
        assert "courier_outbox ready" in result.output
    columns = [
        r[1]
        for r in sqlite3.connect(tmp_path / "app.db").execute("PRAGMA table_info(courier_outbox)")
    ]
    assert columns == [
        *("id", "topic", "key", "type", "source", "payload", "headers", "created_at"),
        "specversion",  # constant, for Debezium's ce_specversion header
    ]


def test_print_sql_changes_nothing() -> None:
    result = runner.invoke(
        app, ["outbox", "create-table", "--database-url", "mysql://u@h/db", "--print-sql"]
    )
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE IF NOT EXISTS `courier_outbox`" in result.output


def test_bad_table_name_is_usage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = runner.invoke(
        app, ["outbox", "create-table", "--database-url", url, "--table", "x; drop"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unsupported_url_is_usage_error() -> None:
    result = runner.invoke(app, ["outbox", "create-table", "--database-url", "oracle://h/db"])
    assert result.exit_code == 2


def test_unreachable_database_is_failure() -> None:
    result = runner.invoke(
        app, ["outbox", "create-table", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]
    )
    assert result.exit_code == 1


@pytest.mark.integration
def test_create_table_on_postgres_twice_gives_the_contract_types(
    database_url: str, unique: Any
) -> None:
    table = unique("cli_outbox")
    try:
        for _ in range(2):
            result = runner.invoke(
                app, ["outbox", "create-table", "--database-url", database_url, "--table", table]
            )
            assert result.exit_code == 0, result.output
        conn = psycopg2.connect(database_url)
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )
            columns = cur.fetchall()
        conn.close()
        assert columns == [
            ("id", "uuid", "NO", None),
            ("topic", "text", "NO", None),
            ("key", "text", "YES", None),
            ("type", "text", "NO", None),
            ("source", "text", "NO", None),
            ("payload", "bytea", "NO", None),
            ("headers", "jsonb", "NO", "'{}'::jsonb"),
            ("created_at", "timestamp with time zone", "NO", None),
            ("specversion", "text", "NO", "'1.0'::text"),
        ]
    finally:
        conn = psycopg2.connect(database_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        conn.close()
