"""Kafka Connect (standalone worker) carrying the real Debezium Postgres connector.

Connectors are created through the REST API (``POST /connectors``), as a team running
Debezium in production would; ``courier relay debezium-config`` prints the body.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from courier.devstack import kafka
from courier.devstack.config import StackConfig
from courier.devstack.jars import Progress, ensure_debezium_plugin, ensure_kafka_jars
from courier.devstack.processes import (
    read_pid,
    require_free_port,
    start_detached,
    stop_process,
    wait_until,
)

DEBEZIUM_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"


def worker_properties(config: StackConfig, plugin_path: Path) -> str:
    return "\n".join(
        [
            f"bootstrap.servers={config.bootstrap_servers}",
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable=false",
            f"offset.storage.file.filename={config.connect_dir / 'connect.offsets'}",
            "offset.flush.interval.ms=1000",
            f"plugin.path={plugin_path}",
            f"listeners=http://127.0.0.1:{config.connect_port}",
            "",
        ]
    )


def _pid_file(config: StackConfig) -> Path:
    return config.connect_dir / "connect.pid"


def log_path(config: StackConfig) -> Path:
    return config.logs_dir / "connect.log"


def rest_get(config: StackConfig, path: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(config.connect_url + path, timeout=timeout) as response:
        return json.loads(response.read())


def is_ready(config: StackConfig) -> bool:
    try:
        return "version" in rest_get(config, "/")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def is_running(config: StackConfig) -> bool:
    return read_pid(_pid_file(config)) is not None


def plugin_classes(config: StackConfig) -> list[str]:
    """Connector classes the worker found on its plugin path."""
    return [p["class"] for p in rest_get(config, "/connector-plugins")]


def start(config: StackConfig, progress: Progress) -> None:
    if is_running(config) and is_ready(config):
        return
    lib = ensure_kafka_jars(config, progress)
    plugins = ensure_debezium_plugin(config, progress)
    if not is_running(config):
        require_free_port("Kafka Connect", config.connect_port, "COURIER_DEV_CONNECT_PORT")
        config.connect_dir.mkdir(parents=True, exist_ok=True)
        props = config.connect_dir / "connect-standalone.properties"
        props.write_text(worker_properties(config, plugins))
        progress(f"Kafka Connect: starting on {config.connect_url}")
        start_detached(
            [
                kafka.java_bin(),
                "-Xms256m",
                "-Xmx1g",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={kafka.log4j_config(config)}",
                f"-Dkafka.logs.dir={config.logs_dir}",
                "-cp",
                f"{lib}/*",
                "org.apache.kafka.connect.cli.ConnectStandalone",
                str(props),
            ],
            log_path(config),
            _pid_file(config),
        )
    progress("Kafka Connect: waiting for the REST API")
    wait_until(
        lambda: is_ready(config),
        what="Kafka Connect",
        timeout=120,
        alive=lambda: is_running(config),
        log_file=log_path(config),
    )


def stop(config: StackConfig) -> bool:
    return stop_process(_pid_file(config), timeout=30)
