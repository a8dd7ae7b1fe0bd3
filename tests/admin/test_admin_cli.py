"""``courier broker run --admin-port``: the page served by the real command, token from env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker.broker_harness import consumer_yaml, free_port
from broker.kafka_helpers import create_topics, write_config
from broker.recording_server import RecordingServer

from .scenario import json_request

TOKEN = "cli-token"


def command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "courier", "broker", "run", "--config", str(config), *extra]


def env_without_token(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COURIER_ADMIN_TOKEN"}
    return {**env, **extra}


def test_off_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path / "b.yaml", {"svc": consumer_yaml("svc", 1, {"t": ["a.v1.S/M"]})})
    result = subprocess.run(
        command(tmp_path / "b.yaml", "--admin-port", str(free_port()), "--admin-host", "0.0.0.0",
                "--bootstrap-servers", "127.0.0.1:1"),
        capture_output=True, text=True, timeout=60, env=env_without_token(),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the admin page on 0.0.0.0 (not loopback) needs a token: "
        "--admin-token or $COURIER_ADMIN_TOKEN"
    ]


@pytest.mark.integration
def test_broker_run_serves_the_admin_page(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    name, topic = unique("svc"), unique("admin_cli")
    port = free_port()
    with RecordingServer({"a.v1.S": ["M"]}) as server:
        config = write_config(
            tmp_path / "b.yaml", {name: consumer_yaml(name, server.port, {topic: ["a.v1.S/M"]})}
        )
        create_topics(bootstrap_servers, config)
        process = subprocess.Popen(
            command(tmp_path / "b.yaml", "--bootstrap-servers", bootstrap_servers,
                    "--admin-port", str(port)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env_without_token(COURIER_ADMIN_TOKEN=TOKEN),
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            view: dict[str, Any] = {}
            while time.monotonic() < deadline:
                try:
                    status, body = json_request(f"{base}/api/consumers")
                    view = body["consumers"][0]
                    if status == 200 and view["partitions"]:
                        break
                except (urllib.error.URLError, ConnectionError):
                    pass
                time.sleep(0.2)
            assert view.get("name") == name and view["breaker"] == "closed", view
            assert {p["topic"] for p in view["partitions"]} == {topic, f"{name}_retry"}
            replay = f"{base}/api/consumers/{name}/dlq/replay"
            assert json_request(replay, {"all": True, "dry_run": True})[0] == 401
            status, summary = json_request(replay, {"all": True, "dry_run": True}, TOKEN)
            assert status == 200 and summary["matched"] == 0, summary
            assert json_request(f"{base}/api/consumers/{name}/dlq")[1]["total"] == 0
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
