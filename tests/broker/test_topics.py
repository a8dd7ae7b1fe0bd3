"""``courier topics ensure`` against the dev stack's Kafka (and against no Kafka at all)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from courier.broker.config import BrokerConfig, parse_config
from courier.broker.topics import TopicsError, ensure_topics

CONFIG = """
topics:
  partitions: 2
consumers:
  svc-a:
    grpc-server-hostname: localhost
    grpc-server-port: 50001
    max-retry-attempts: 3
    batch-size: 5
    retry-topic: {name}_a_retry
    dlq-topic: {name}_a_dlq
    distribution:
      - topic: {name}_shared
        services: [p.v1.Svc/A]
  svc-b:
    grpc-server-hostname: localhost
    grpc-server-port: 50002
    max-retry-attempts: 3
    batch-size: 5
    retry-topic: {name}_b_retry
    dlq-topic: {name}_b_dlq
    distribution:
      - topic: {name}_shared
        services: [p.v1.Svc/B]
      - topic: {name}_only_b
        services: [p.v1.Svc/C]
"""


def _courier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "courier", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_dead_kafka_is_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(CONFIG.format(name="nowhere"))
    started = time.monotonic()
    result = _courier(
        "topics", "ensure", "--config", str(path), "--bootstrap-servers", "127.0.0.1:1",
        "--timeout", "2",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "127.0.0.1:1: Kafka did not answer within 2s" in result.stderr
    assert "Traceback" not in result.stderr and "FAIL|rdkafka" not in result.stderr
    assert elapsed < 15


def test_bad_config_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("consumers: {}\n")
    result = _courier("topics", "ensure", "--config", str(path))
    assert result.returncode == 2 and "consumers: must map consumer names" in result.stderr


@pytest.fixture()
def config(unique: Callable[[str], str], bootstrap_servers: str) -> Iterator[BrokerConfig]:
    broker = parse_config(CONFIG.format(name=unique("topics")))
    yield broker
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    names = list(broker.topic_roles())
    for future in admin.delete_topics(names, operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # never created: nothing to delete
            future.result()


@pytest.mark.integration
def test_ensure_creates_missing_topics_then_reports_them_present(
    config: BrokerConfig, bootstrap_servers: str
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    topics = list(config.topic_roles())
    assert len(topics) == 6  # the shared topic once
    first = ensure_topics(admin, config)
    assert [o.topic for o in first] == topics
    assert {o.status for o in first} == {"created"}
    shared = next(o for o in first if o.topic.endswith("_shared"))
    assert shared.roles == ("distribution (svc-a)", "distribution (svc-b)")
    metadata = admin.list_topics(timeout=10)
    assert {len(metadata.topics[t].partitions) for t in topics} == {2}

    second = ensure_topics(admin, config, partitions=5)
    assert {o.status for o in second} == {"present"}
    assert {o.partitions for o in second} == {2}  # existing topics are not altered


@pytest.mark.integration
def test_ensure_cli_reports_and_fails_on_impossible_replication(
    config: BrokerConfig, bootstrap_servers: str, tmp_path: Path
) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(config.to_yaml())
    servers = ("--bootstrap-servers", bootstrap_servers)
    bad = _courier("topics", "ensure", "--config", str(path), "--replication-factor", "9", *servers)
    assert bad.returncode == 1, bad.stderr
    assert "replication factor" in bad.stderr and "Traceback" not in bad.stderr

    good = _courier("topics", "ensure", "--config", str(path), "--partitions", "1", *servers)
    assert good.returncode == 0, good.stderr
    assert "6 created, 0 already present" in good.stdout
    again = _courier("topics", "ensure", "--config", str(path), *servers)
    assert again.returncode == 0 and "0 created, 6 already present" in again.stdout


@pytest.mark.integration
def test_topics_error_carries_every_outcome(config: BrokerConfig, bootstrap_servers: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    with pytest.raises(TopicsError) as info:
        ensure_topics(admin, config, replication_factor=9)
    assert [o.status for o in info.value.outcomes] == ["failed"] * 6
