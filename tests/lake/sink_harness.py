"""Real-Kafka helpers for the lake's integration tests: topics, producing, a sink process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from courier.events import EventEnvelope
from courier.lake.files import list_lake_files
from courier.relay.testing import end_offsets


def create_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int = 3) -> None:
    """Create ``topics`` with ``partitions`` partitions each and wait until they exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result(timeout=30)


def produce(
    bootstrap_servers: str, events: Iterable[EventEnvelope], extra: Sequence[dict[str, Any]] = ()
) -> list[EventEnvelope]:
    """Write ``events`` (and raw records given as Producer.produce kwargs); wait for the acks."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 10, "acks": "all"})
    failures: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    sent = list(events)
    records = [
        {"topic": e.topic, "value": e.payload, "key": e.kafka_key(), "headers": e.kafka_headers()}
        for e in sent
    ]
    for kwargs in [*records, *extra]:
        while True:
            try:
                producer.produce(on_delivery=report, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0 and not failures, failures
    return sent


def committed(
    bootstrap_servers: str, group: str, topic: str, partitions: int = 3
) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def wait_until_committed(
    bootstrap_servers: str, group: str, topics: Sequence[str], timeout: float = 90
) -> None:
    """Wait until ``group`` has committed every partition of ``topics`` to its end."""
    ends = {t: dict(enumerate(end_offsets(bootstrap_servers, t, 3))) for t in topics}

    def done(topic: str) -> bool:
        found = committed(bootstrap_servers, group, topic)
        return all(found[p] == end or (end == 0 and found[p] < 0) for p, end in ends[topic].items())

    wait_for(lambda: all(done(t) for t in topics), timeout, f"group {group} to commit {ends}")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def rows_on_disk(lake: Path) -> int:
    """Rows in all lake files, duplicates included (what a reader without dedupe would see)."""
    total = 0
    for f in list_lake_files(lake):
        try:
            total += pq.read_metadata(f.path).num_rows
        except FileNotFoundError:
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(
    bootstrap_servers: str, lake: Path, group: str, topics: Sequence[str], log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``courier lake sink`` as a separate process (so it can be killed with -9)."""
    env = {**os.environ, "COURIER_BOOTSTRAP_SERVERS": bootstrap_servers}
    return subprocess.Popen(
        [sys.executable, "-m", "courier", "lake", "sink", "--out", str(lake), "--group", group,
         "--topics", ",".join(topics), *extra],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then wait for the exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def lake_query(lake: Path, sql: str) -> list[dict[str, Any]]:
    """``courier lake query SQL --lake DIR --format json``, parsed."""
    result = subprocess.run(
        [sys.executable, "-m", "courier", "lake", "query", sql, "--lake", str(lake),
         "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows
