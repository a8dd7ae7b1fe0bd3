"""Apache Kafka for the local stack: one KRaft node (broker + controller) on loopback.

Started straight from the Maven jars with ``java -cp 'lib/*' kafka.Kafka``; the storage
directory is formatted on first start with a fresh cluster id.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from courier.devstack.config import HOST, StackConfig
from courier.devstack.jars import Progress, ensure_kafka_jars
from courier.devstack.processes import (
    StackError,
    read_pid,
    require_free_port,
    start_detached,
    stop_process,
    wait_until,
)

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = STDERR
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
logger.connect.name = org.apache.kafka.connect.runtime.Connect
logger.connect.level = info
logger.rest.name = org.apache.kafka.connect.runtime.rest.RestServer
logger.rest.level = info
"""


def java_bin() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("java is not installed: Kafka needs a Java 17+ runtime")
    return java


def server_properties(config: StackConfig) -> str:
    controller = f"{HOST}:{config.controller_port}"
    broker = f"{HOST}:{config.kafka_port}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={controller}",
            f"listeners=PLAINTEXT://{broker},CONTROLLER://{controller}",
            f"advertised.listeners=PLAINTEXT://{broker},CONTROLLER://{controller}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={config.kafka_dir / 'data'}",
            "num.partitions=3",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.cleaner.dedupe.buffer.size=33554432",
            "log.retention.hours=24",
            "",
        ]
    )


def _pid_file(config: StackConfig) -> Path:
    return config.kafka_dir / "kafka.pid"


def log_path(config: StackConfig) -> Path:
    return config.logs_dir / "kafka.log"


def log4j_config(config: StackConfig) -> Path:
    path = config.data_dir / "log4j2.properties"
    if not path.exists() or path.read_text() != LOG4J2_PROPERTIES:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LOG4J2_PROPERTIES)
    return path


def new_cluster_id() -> str:
    """A Kafka cluster id: 22 characters of URL-safe base64, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def is_ready(config: StackConfig) -> bool:
    """A real metadata request answered by a broker (a TCP connect alone proves nothing)."""
    try:
        admin = AdminClient(
            {"bootstrap.servers": config.bootstrap_servers, "logger": _silent_logger()}  # type: ignore[dict-item]
        )
        metadata = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(metadata.brokers)


def _silent_logger() -> logging.Logger:
    # librdkafka's "connection refused" noise while the broker starts is expected.
    logger = logging.getLogger("courier.devstack.kafka-probe")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def is_running(config: StackConfig) -> bool:
    return read_pid(_pid_file(config)) is not None


def start(config: StackConfig, progress: Progress) -> None:
    if is_running(config) and is_ready(config):
        return
    lib = ensure_kafka_jars(config, progress)
    java = java_bin()
    if not is_running(config):
        require_free_port("Kafka", config.kafka_port, "COURIER_DEV_KAFKA_PORT")
        require_free_port("Kafka controller", config.controller_port, "COURIER_DEV_CONTROLLER_PORT")
        config.kafka_dir.mkdir(parents=True, exist_ok=True)
        props = config.kafka_dir / "server.properties"
        props.write_text(server_properties(config))
        log4j = log4j_config(config)
        classpath = f"{lib}/*"
        if not (config.kafka_dir / "data" / "meta.properties").exists():
            progress("Kafka: formatting KRaft storage (first start)")
            result = subprocess.run(
                [
                    java,
                    "-Xmx256m",
                    f"-Dlog4j2.configurationFile={log4j}",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    new_cluster_id(),
                    "-c",
                    str(props),
                    "--standalone",
                    "--ignore-formatted",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(f"Kafka storage format failed: {result.stderr.strip()[-800:]}")
        progress(f"Kafka {config.kafka_version}: starting on {config.bootstrap_servers}")
        start_detached(
            [
                java,
                "-Xms512m",
                "-Xmx1g",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={log4j}",
                f"-Dkafka.logs.dir={config.logs_dir}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(props),
            ],
            log_path(config),
            _pid_file(config),
        )
    progress("Kafka: waiting for a metadata response")
    wait_until(
        lambda: is_ready(config),
        what="Kafka",
        timeout=90,
        alive=lambda: is_running(config),
        log_file=log_path(config),
    )


def stop(config: StackConfig) -> bool:
    return stop_process(_pid_file(config), timeout=30)
