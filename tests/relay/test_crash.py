"""``kill -9`` of ``courier relay run`` in the middle of 10,000 events, then a restart.

Every event id must reach Kafka (duplicates are allowed, counted and printed), each key's
events must keep their commit order, and the restarted relay must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.outbox.table import create_table_statements
from courier.relay.logical import LogicalRelay, LogicalRelayConfig
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import KafkaPublisher

pytestmark = pytest.mark.integration

EVENTS = 10_000
KEYS = 100
KILL_AFTER = 3_000
PARTITIONS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelayProcess:
    """``courier relay run`` as a child process, its stdout (JSON lines) in a file."""

    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        self.port = _free_port()
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "courier",
                    "relay",
                    "run",
                    *args,
                    "--metrics-port",
                    str(self.port),
                    "--metrics-host",
                    "127.0.0.1",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except OSError:
            return 0, ""

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/healthz")[0] == 200:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"relay exited early:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"relay not healthy in time:\n{self.log.read_text()}")


@pytest.fixture()
def names(unique: Any, database_url: str, bootstrap_servers: str) -> Iterator[dict[str, str]]:
    table, slot = unique("crash_outbox"), unique("crash_slot")
    topic = unique("crash.events")
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in create_table_statements("postgresql", table):
            cur.execute(statement)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    yield {"table": table, "slot": slot, "publication": f"{slot}_pub", "topic": topic}
    config = LogicalRelayConfig(
        database_url=database_url, table=table, slot=slot, publication=f"{slot}_pub"
    )
    LogicalRelay(config, KafkaPublisher(bootstrap_servers), RelayMetrics("log")).drop_slot()
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.close()
    admin.delete_topics([topic])


def _write_events(
    database_url: str, table: str, topic: str, done: threading.Event, errors: list[BaseException]
) -> None:
    """10,000 events in transactions of 1-40 rows; payload 'key|seq', seq counting per key."""
    rnd = random.Random(7)
    seq: dict[str, int] = defaultdict(int)
    conn = psycopg2.connect(database_url)
    try:
        written = 0
        while written < EVENTS:
            size = min(rnd.randint(1, 40), EVENTS - written)
            with conn:
                for _ in range(size):
                    key = f"k{rnd.randrange(KEYS):03d}"
                    payload = StringValue(value=f"{key}|{seq[key]}")
                    build_event(payload, key=key, topic=topic).save(conn, table=table)
                    seq[key] += 1
            written += size
            if rnd.random() < 0.05:
                time.sleep(0.01)
    except BaseException as exc:
        errors.append(exc)
    finally:
        conn.close()
        done.set()


def test_kill_9_midway_then_restart_loses_nothing(
    names: dict[str, str],
    database_url: str,
    bootstrap_servers: str,
    courier_env: dict[str, str],
    tmp_path: Path,
) -> None:
    args = [
        "--table",
        names["table"],
        "--slot",
        names["slot"],
        "--publication",
        names["publication"],
        "--cleanup-after",
        "0",
    ]
    log = tmp_path / "relay.log"
    relay = RelayProcess(courier_env, args, log)
    relay.wait_healthy()

    done = threading.Event()
    errors: list[BaseException] = []
    writer = threading.Thread(
        target=_write_events, args=(database_url, names["table"], names["topic"], done, errors)
    )
    writer.start()

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"crash-{names['slot']}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([names["topic"]])
    records: list[tuple[str, int, str]] = []  # (event id, partition, "key|seq")
    seen: set[str] = set()
    positions: set[tuple[int | None, int | None]] = set()
    killed_at: int | None = None
    deadline = time.monotonic() + 180
    try:
        while len(seen) < EVENTS and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            position = (message.partition(), message.offset())
            if position in positions:
                continue  # the consumer re-read a record after a rebalance: not a resend
            positions.add(position)
            event_id = dict(message.headers() or [])["ce_id"].decode()
            value = StringValue.FromString(message.value()).value
            records.append((event_id, message.partition() or 0, value))
            seen.add(event_id)
            if killed_at is None and len(seen) >= KILL_AFTER:
                relay.proc.send_signal(signal.SIGKILL)
                relay.proc.wait(10)
                killed_at = len(seen)
                relay = RelayProcess(courier_env, args, log)
                relay.wait_healthy()
    finally:
        consumer.close()
        writer.join(60)

    assert not errors, errors
    assert killed_at is not None and killed_at < EVENTS, "the kill did not happen mid-stream"
    status, metrics_text = relay.get("/metrics")
    relay.proc.send_signal(signal.SIGTERM)
    assert relay.proc.wait(30) == 0, log.read_text()[-3000:]

    duplicates = len(records) - len(seen)
    print(
        f"\n[kill -9] killed after {killed_at} distinct events; {len(records)} records read, "
        f"{len(seen)} distinct ids, {duplicates} duplicates (resent after the restart)"
    )
    assert len(seen) == EVENTS, f"lost {EVENTS - len(seen)} events"

    # Per key: one partition, and the first occurrences come in commit order 0, 1, 2, ...
    partitions: dict[str, set[int]] = defaultdict(set)
    order: dict[str, list[int]] = defaultdict(list)
    first_seen: set[str] = set()
    for event_id, partition, value in records:
        key, seq = value.split("|")
        partitions[key].add(partition)
        if event_id not in first_seen:
            first_seen.add(event_id)
            order[key].append(int(seq))
    assert all(len(p) == 1 for p in partitions.values())
    for key, seqs in order.items():
        assert seqs == list(range(len(seqs))), f"key {key} out of order"

    assert status == 200
    assert "courier_relay_events_published_total" in metrics_text
    assert "courier_relay_slot_lag_bytes" in metrics_text
    for line in log.read_text().splitlines():
        assert isinstance(json.loads(line), dict), line  # stdout is a file: JSON lines
    assert os.path.getsize(log) > 0
