"""``courier broker run`` refusing to start: one line on stderr, the documented exit code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from packages.v1 import events_api_pb2  # noqa: F401  (descriptors for server reflection)

from .broker_harness import consumer_yaml
from .kafka_helpers import create_topics, write_config
from .recording_server import RecordingServer

pytestmark = pytest.mark.integration


def _run(config: Path, bootstrap_servers: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "courier", "broker", "run", "--config", str(config),
         "--bootstrap-servers", bootstrap_servers],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_missing_topics_exit_1_naming_them(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    name, topic = unique("svc"), unique("nowhere")
    write_config(tmp_path / "b.yaml", {name: consumer_yaml(name, 1, {topic: ["a.v1.S/M"]})})
    result = _run(tmp_path / "b.yaml", bootstrap_servers)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: missing Kafka topics: {topic}, {name}_retry, {name}_dlq "
        "(create them: courier topics ensure --config ...)"
    ]


def test_bare_method_no_service_has_exits_2(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    name, topic = unique("svc"), unique("orders")
    with RecordingServer({"packages.v1.ServiceBEventsAPI": ["EndpointC"]}) as server:
        config = write_config(
            tmp_path / "b.yaml", {name: consumer_yaml(name, server.port, {topic: ["Missing"]})}
        )
        create_topics(bootstrap_servers, config)
        result = _run(tmp_path / "b.yaml", bootstrap_servers)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "no service on the server has a method 'Missing'" in result.stderr


def test_unreachable_kafka_exits_1(unique: Callable[[str], str], tmp_path: Path) -> None:
    name = unique("svc")
    write_config(tmp_path / "b.yaml", {name: consumer_yaml(name, 1, {"t": ["a.v1.S/M"]})})
    result = subprocess.run(
        [sys.executable, "-m", "courier", "broker", "run", "--config",
         str(tmp_path / "b.yaml"), "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Kafka did not answer" in result.stderr
