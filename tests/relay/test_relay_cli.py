"""``courier relay run``: usage and configuration errors are one line and exit 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from courier.cli import app

runner = CliRunner()


def test_poll_mode_without_the_table_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["relay", "run", "--mode", "poll", "--database-url", url])
    assert result.exit_code == 2
    assert "courier outbox create-table" in result.output
    assert "Traceback" not in result.output


def test_log_mode_needs_postgres(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = runner.invoke(app, ["relay", "run", "--mode", "log", "--database-url", url])
    assert result.exit_code == 2
    assert "--mode poll" in result.output


def test_bad_producer_setting_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = runner.invoke(
        app, ["relay", "run", "--database-url", url, "--producer-config", "no-equals-sign"]
    )
    assert result.exit_code == 2


def test_unreachable_database_exits_1() -> None:
    result = runner.invoke(
        app,
        ["relay", "run", "--mode", "poll", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
    )
    assert result.exit_code == 1
