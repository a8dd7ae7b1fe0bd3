"""What an operator sees of ``courier broker run``: its /metrics port, scraped over HTTP after
real deliveries, and its JSON log lines around failing deliveries (real Kafka, real gRPC)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .broker_harness import consumer_yaml, free_port
from .kafka_helpers import create_topics, make_event, produce, read_topic, write_config
from .recording_server import Answer, Call, RecordingServer

pytestmark = pytest.mark.integration

SVC = "test.v1.Events"
METHOD = f"/{SVC}/Handle"
GOOD = 30
SECRET = b"PAYLOAD-BYTES-NEVER-LOGGED"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _behaviour(failed_once: set[str]) -> Callable[[Call], Answer]:
    def answer(call: Call) -> Answer:
        if call.payload.startswith(b"reject"):
            return grpc.StatusCode.INVALID_ARGUMENT, "unknown package"
        if call.payload.startswith(b"down"):
            return grpc.StatusCode.UNAVAILABLE, "carrier api down"
        if call.payload.startswith(b"flaky") and call.event_id not in failed_once:
            failed_once.add(call.event_id)
            return grpc.StatusCode.UNAVAILABLE, "carrier api slow"
        return None

    return answer


def test_metrics_port_and_json_logs_after_real_deliveries(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topic, name = unique("observed"), unique("svc")
    log_path = tmp_path / "broker.log"
    port = free_port()
    labels = {"consumer": name, "method": METHOD}
    with RecordingServer({SVC: ["Handle"]}) as server:
        server.behaviour = _behaviour(set())
        config_path = tmp_path / "broker.yaml"
        entry = consumer_yaml(
            name, server.port, {topic: [METHOD]}, max_retry_attempts=1,
            **{"circuit-breaker": {"enabled": False}},
        )  # fmt: skip
        config = write_config(config_path, {name: entry})
        create_topics(bootstrap_servers, config)
        good = produce(bootstrap_servers, (make_event(topic) for _ in range(GOOD)))
        rejected = produce(
            bootstrap_servers, (make_event(topic, payload=b"reject" + SECRET) for _ in range(2))
        )
        (flaky,) = produce(bootstrap_servers, [make_event(topic, payload=b"flaky" + SECRET)])
        (down,) = produce(bootstrap_servers, [make_event(topic, payload=b"down" + SECRET)])
        successes = {e.id for e in good} | {flaky.id}

        broker = subprocess.Popen(
            [sys.executable, "-m", "courier", "broker", "run", "--config", str(config_path),
             "--bootstrap-servers", bootstrap_servers, "--metrics-port", str(port),
             "--log-format", "json"],
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            server.wait_for(lambda: set(server.delivered("Handle")) == successes, 60, "deliveries")
            dlq = config.consumers[name].dlq_topic
            server.wait_for(lambda: len(read_topic(bootstrap_servers, dlq, 2)) == 3, 30, "DLQ")
            deadline = time.monotonic() + 15
            while True:  # the DLQ acks and the metrics land a moment after the calls
                samples = _scrape(port)
                done = _value(samples, "courier_broker_dlq_writes_total", consumer=name,
                              status="INVALID_ARGUMENT") == 2  # fmt: skip
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            calls = server.snapshot()
        finally:
            broker.send_signal(signal.SIGTERM)
            code = broker.wait(30)
    log = log_path.read_bytes()
    assert code == 0, log.decode()[-3000:]

    # -- metrics, over HTTP ------------------------------------------------------------------
    assert _value(samples, "courier_broker_deliveries_total", **labels, outcome="ok") == len(
        successes
    )
    assert _value(samples, "courier_broker_deliveries_total", **labels,
                  outcome="invalid_argument") == 2  # fmt: skip
    assert _value(samples, "courier_broker_deliveries_total", **labels, outcome="unavailable") == 5
    assert _value(samples, "courier_broker_end_to_end_latency_seconds_count", **labels) == len(
        successes
    )
    e2e_sum = _value(samples, "courier_broker_end_to_end_latency_seconds_sum", **labels)
    assert 0 < e2e_sum < 60 * len(successes)
    assert _value(samples, "courier_broker_delivery_seconds_count", **labels) == len(calls)
    assert _value(samples, "courier_broker_events_read_total", consumer=name, topic=topic) == (
        GOOD + 4
    )
    assert _value(samples, "courier_broker_retries_total", consumer=name, kind="in_memory") == 3
    assert _value(samples, "courier_broker_dlq_writes_total", consumer=name,
                  status="UNAVAILABLE") == 1  # fmt: skip

    # -- logs: every line JSON, one per failed call, no payload ------------------------------
    assert SECRET not in log
    lines = [json.loads(raw) for raw in log.decode().splitlines() if raw.strip()]
    failed = [line for line in lines if line["message"] == "delivery failed"]
    assert len(failed) == sum(1 for c in calls if c.code is not grpc.StatusCode.OK) == 7
    for line in failed:
        assert line["level"] == "warning" and line["logger"] == "courier.broker"
        assert (line["consumer"], line["method"]) == (name, METHOD)
        assert line["event_type"] == "packages.v1.PackageDelivered"
    by_event = {
        e.id: [(ln["attempt"], ln["calls"], ln["status"], ln["action"])
               for ln in failed if ln["event_id"] == e.id]
        for e in (*rejected, flaky, down)
    }  # fmt: skip
    for event in rejected:
        assert by_event[event.id] == [(1, 1, "INVALID_ARGUMENT", "dlq")]
    assert by_event[flaky.id] == [(1, 1, "UNAVAILABLE", "retry_in_memory")]
    assert by_event[down.id] == [
        (1, 1, "UNAVAILABLE", "retry_in_memory"),
        (1, 2, "UNAVAILABLE", "retry_topic"),
        (2, 1, "UNAVAILABLE", "retry_in_memory"),
        (2, 2, "UNAVAILABLE", "dlq"),
    ]
    final = [ln for ln in failed if ln["action"] in ("retry_topic", "dlq")]
    assert {(ln["topic"], ln["error"]) for ln in final} == {
        (topic, "unknown package"), (config.consumers[name].retry_topic, "carrier api down"),
        (topic, "carrier api down"),
    }  # fmt: skip
    assert Counter(ln["event_id"] for ln in failed if ln["event_id"] in successes) == {flaky.id: 1}
