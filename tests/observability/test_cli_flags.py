"""``--log-format`` and ``--metrics-host`` on every long-running command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from courier.cli import app
from courier.observability.logging import LOG_FORMAT_ENV

runner = CliRunner()

BROKER_YAML = """\
consumers:
  svc:
    grpc-server-hostname: "127.0.0.1"
    grpc-server-port: "1"
    max-retry-attempts: 3
    batch-size: 10
    retry-topic: "svc_retry"
    dlq-topic: "svc_dlq"
    distribution:
      - topic: "orders"
        services: ["shop.v1.Orders/Handle"]
"""


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    config = tmp_path / "broker.yaml"
    config.write_text(BROKER_YAML)
    return {
        "relay": ["relay", "run", "--mode", "poll", "--database-url",
                  "postgresql://app:hunter2@127.0.0.1:1/shop"],
        "broker": ["broker", "run", "--config", str(config), "--bootstrap-servers", "127.0.0.1:1"],
        "lake": ["lake", "sink", "--out", str(tmp_path / "lake"), "--bootstrap-servers",
                 "127.0.0.1:1"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["relay", "broker", "lake"])
def test_an_unknown_log_format_is_one_line_and_exit_2(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    args = _commands(tmp_path)[command]
    result = runner.invoke(app, [*args, "--log-format", "xml"])
    assert result.exit_code == 2, result.output
    assert "--log-format must be json or text, not 'xml'" in result.output
    assert "Traceback" not in result.output and "hunter2" not in result.output

    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{LOG_FORMAT_ENV} must be json or text, not 'yaml'" in result.output


@pytest.mark.parametrize("command", [["relay", "run"], ["broker", "run"], ["lake", "sink"]])
def test_metrics_bind_to_loopback_unless_told(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--metrics-port", "--metrics-host", "--log-format"):
        assert flag in result.output
    assert "127.0.0.1" in result.output
    assert "0.0.0.0" not in result.output
