"""``courier outbox create-table``: idempotent, and one clear line on bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
