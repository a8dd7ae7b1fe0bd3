"""Each long-running process's metrics port, scraped with HTTP after real events went through:
relay, broker and lake sink as ``courier`` child processes, the consumer kit's server in this
process. Every documented metric is listed on its port, and the ones that count the events
say how many there were."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml
from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc, events_pb2
from prometheus_client.parser import text_string_to_metric_families

from courier import build_event
from courier.broker.config import parse_config
from courier.broker.kafka_clients import admin_client
from courier.broker.topics import ensure_topics
from courier.consumer import serve
from courier.outbox.table import create_table_statements

from .test_metrics_docs import documented

pytestmark = pytest.mark.integration

EVENTS = 40
SERVICE = "packages.v1.ServiceAEventsAPI"
METHOD = f"/{SERVICE}/EndpointA"
PROCESSES = {"relay": "Relay", "broker": "Broker", "lake": "Lake sink", "consumer": "Consumer kit"}
"""Process -> its section of docs/metrics.md."""


class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.handled: list[str] = []

    def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        self.handled.append(request.package.id)
        return Empty()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> tuple[set[str], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """The metric names listed on ``port`` (``# HELP`` lines), and every sample's value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    listed = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return listed, samples


def _total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


@contextmanager
def _child(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "courier", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(5)
        assert code == 0, f"{args[:2]} exited {code}: {log.read_text()[-2000:]}"


@contextmanager
def _consumer_server(servicer: ServiceA, port: int, metrics_port: int) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(servicer,),
        kwargs={"port": port, "metrics_port": metrics_port, "stop_event": stop, "grace": 1.0},
        daemon=True,
    )  # fmt: skip
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def _listed(port: int) -> set[str]:
    try:
        return _scrape(port)[0]
    except OSError:
        return set()


def test_every_process_serves_its_documented_metrics_with_the_events_counted(
    database_url: str,
    bootstrap_servers: str,
    courier_env: dict[str, str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic, table, consumer = unique("metered"), unique("outbox_m").replace("-", "_"), unique("svc")
    ports = {name: _free_port() for name in ("relay", "broker", "lake", "consumer", "grpc")}
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in create_table_statements("postgresql", table):
            cur.execute(statement)
    entry = {
        "grpc-server-hostname": "127.0.0.1", "grpc-server-port": str(ports["grpc"]),
        "max-retry-attempts": 2, "batch-size": 10,
        "retry-topic": f"{consumer}_retry", "dlq-topic": f"{consumer}_dlq",
        "distribution": [{"topic": topic, "services": [f"{SERVICE}/EndpointA"]}],
    }  # fmt: skip
    config_text = yaml.safe_dump({"topics": {"partitions": 2}, "consumers": {consumer: entry}})
    config_path = tmp_path / "broker.yaml"
    config_path.write_text(config_text)
    ensure_topics(admin_client(bootstrap_servers), parse_config(config_text, str(config_path)))

    servicer = ServiceA()
    metrics = "--metrics-port"
    relay_args = ["relay", "run", "--mode", "poll", "--table", table, "--poll-interval", "0.05",
                  metrics, str(ports["relay"])]  # fmt: skip
    broker_args = ["broker", "run", "--config", str(config_path), metrics, str(ports["broker"])]
    lake_args = ["lake", "sink", "--out", str(tmp_path / "lake"), "--topics", topic,
                 "--group", unique("lake"), "--roll-seconds", "0.3",
                 metrics, str(ports["lake"])]  # fmt: skip
    try:
        with (
            _consumer_server(servicer, ports["grpc"], ports["consumer"]),
            _child(relay_args, courier_env, tmp_path / "relay.log"),
            _child(broker_args, courier_env, tmp_path / "broker.log"),
            _child(lake_args, courier_env, tmp_path / "lake.log"),
        ):
            _wait(lambda: all(_listed(ports[name]) for name in PROCESSES), 30, "metrics ports")
            producer = psycopg2.connect(database_url)  # one transaction, as a service would
            try:
                for n in range(EVENTS):
                    message = events_pb2.PackageDelivered()
                    message.package.id = f"p-{n}"
                    build_event(message, topic=topic, key=f"k{n % 5}").save(producer, table=table)
                producer.commit()
            finally:
                producer.close()
            _wait(lambda: len(set(servicer.handled)) == EVENTS, 60, "every event handled")

            def written() -> float:
                return _total(_scrape(ports["lake"])[1], "courier_lake_events_written_total")

            _wait(lambda: written() >= EVENTS, 30, "the lake files")
            scraped = {name: _scrape(ports[name]) for name in PROCESSES}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        conn.close()

    sections = documented()
    for process, section in PROCESSES.items():
        listed = scraped[process][0]
        missing = {name for name, _, _ in sections[section]} - listed
        assert not missing, f"{process} port does not list {sorted(missing)}"

    relay, broker, lake, kit = (scraped[p][1] for p in PROCESSES)
    assert relay[("courier_relay_events_published_total", frozenset({("topic", topic)}))] == EVENTS
    assert relay[("courier_relay_lag_seconds_count", frozenset({("topic", topic)}))] == EVENTS
    by_method = frozenset({("consumer", consumer), ("method", METHOD)})
    ok = by_method | {("outcome", "ok")}
    assert broker[("courier_broker_deliveries_total", ok)] == EVENTS
    assert broker[("courier_broker_end_to_end_latency_seconds_count", by_method)] == EVENTS
    assert broker[("courier_broker_end_to_end_latency_seconds_sum", by_method)] > 0
    read = frozenset({("consumer", consumer), ("topic", topic)})
    assert broker[("courier_broker_events_read_total", read)] == EVENTS
    assert lake[("courier_lake_events_written_total", frozenset({("topic", topic)}))] == EVENTS
    assert lake[("courier_lake_files_written_total", frozenset({("topic", topic)}))] >= 1
    handled = frozenset({("method", METHOD), ("outcome", "ok")})
    assert kit[("courier_consumer_handled_total", handled)] >= EVENTS
    latency = frozenset({("method", METHOD)})
    assert kit[("courier_consumer_end_to_end_latency_seconds_count", latency)] >= EVENTS
