"""The local stack as a whole: start in order, stop in reverse, report status.

Start order is PostgreSQL, Kafka, then Kafka Connect: on two cores, starting the JVMs
one after another is faster than starting them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from courier.devstack import connect, kafka, postgres
from courier.devstack.config import StackConfig
from courier.devstack.jars import Progress


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    running: bool
    answering: bool
    log_file: Path
    detail: str = ""


def up(config: StackConfig, *, with_connect: bool, progress: Progress) -> None:
    """Bring every requested service up; a service already answering is left alone."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    postgres.start(config, progress)
    kafka.start(config, progress)
    if with_connect:
        connect.start(config, progress)


def down(config: StackConfig) -> list[str]:
    """Stop everything this stack started; returns the names of the services stopped."""
    stopped = []
    if connect.stop(config):
        stopped.append("kafka-connect")
    if kafka.stop(config):
        stopped.append("kafka")
    if postgres.stop(config):
        stopped.append("postgres")
    return stopped


def status(config: StackConfig) -> list[ServiceStatus]:
    rows = [
        ServiceStatus(
            "postgres",
            config.database_url,
            postgres.is_running(config),
            postgres.is_ready(config),
            postgres.log_path(config),
        ),
        ServiceStatus(
            "kafka",
            config.bootstrap_servers,
            kafka.is_running(config),
            kafka.is_ready(config),
            kafka.log_path(config),
        ),
    ]
    if connect.is_running(config):
        answering = connect.is_ready(config)
        detail = ""
        if answering:
            found = connect.DEBEZIUM_CONNECTOR_CLASS in connect.plugin_classes(config)
            detail = "debezium postgres plugin loaded" if found else "debezium plugin MISSING"
        rows.append(
            ServiceStatus(
                "kafka-connect",
                config.connect_url,
                True,
                answering,
                connect.log_path(config),
                detail,
            )
        )
    return rows
