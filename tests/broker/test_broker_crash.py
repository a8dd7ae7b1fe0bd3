"""``kill -9`` of ``courier broker run`` in the middle of 10,000 events, then a restart:
every event is delivered at least once (lost = 0); duplicates are counted and printed.
Then SIGTERM: the broker commits what is done and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from .broker_harness import consumer_yaml, free_port
from .kafka_helpers import committed, create_topics, make_event, produce, write_config
from .recording_server import RecordingServer

pytestmark = pytest.mark.integration

SVC = "test.v1.Events"
EVENTS = 10_000
PARTITIONS = 3


def _start(
    config: Path, bootstrap_servers: str, log: Path, metrics_port: int | None = None
) -> subprocess.Popen[bytes]:
    extra = [] if metrics_port is None else ["--metrics-port", str(metrics_port)]
    return subprocess.Popen(
        [sys.executable, "-m", "courier", "broker", "run", "--config", str(config),
         "--bootstrap-servers", bootstrap_servers, *extra],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "end-offsets"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def test_kill_9_mid_stream_loses_nothing(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topic, name = unique("crash"), unique("svc")
    log = tmp_path / "broker.log"
    with RecordingServer({SVC: ["Handle"]}, workers=8) as server:
        config_path = tmp_path / "broker.yaml"
        config = write_config(
            config_path,
            {name: consumer_yaml(name, server.port, {topic: [f"{SVC}/Handle"]}, batch_size=50)},
            partitions=PARTITIONS,
        )
        create_topics(bootstrap_servers, config)
        events = produce(bootstrap_servers, (make_event(topic) for _ in range(EVENTS)))
        ids = {e.id for e in events}

        broker = _start(config_path, bootstrap_servers, log)
        try:
            server.wait_for(lambda: len(server.calls) >= EVENTS // 3, 90, "a third delivered")
            broker.send_signal(signal.SIGKILL)
            broker.wait(10)
            at_kill = len(server.delivered("Handle"))
            metrics_port = free_port()
            broker = _start(config_path, bootstrap_servers, log, metrics_port)
            server.wait_for(
                lambda: len(server.delivered("Handle")) == EVENTS, 120, "every event delivered"
            )
            time.sleep(1.0)  # a commit interval and a lag update
            assert _get(metrics_port, "/healthz") == (200, "ok\n")
            status, metrics = _get(metrics_port, "/metrics")
            assert status == 200
            for metric in (
                "courier_broker_deliveries_total",
                "courier_broker_delivery_seconds",
                "courier_broker_in_flight",
                "courier_broker_breaker_state",
                "courier_broker_consumer_lag",
                "courier_broker_end_to_end_latency_seconds",
            ):
                assert metric in metrics, metric
            assert f'courier_broker_in_flight{{consumer="{name}"}} 0.0' in metrics
            broker.send_signal(signal.SIGTERM)
            code = broker.wait(30)
        finally:
            if broker.poll() is None:
                broker.kill()
        delivered = server.delivered("Handle")
        lost = ids - set(delivered)
        duplicates = sum(n - 1 for n in delivered.values())
        print(f"\nkill -9 after {at_kill} of {EVENTS} delivered; after restart: lost={len(lost)} "
              f"duplicates={duplicates}")  # fmt: skip
        assert not lost
        assert set(delivered) == ids
        assert code == 0, log.read_text()[-3000:]
        group = config.consumers[name].group_id
        assert committed(bootstrap_servers, group, topic, PARTITIONS) == _end_offsets(
            bootstrap_servers, topic
        )
        assert os.path.getsize(log) > 0
