"""The broker when consumers fail: isolation, retry topic, DLQ and replay, per-method retries,
straight-to-DLQ statuses and records that are not events. Real Kafka, real gRPC servers."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from courier.broker.retry_headers import RetryState

from .broker_harness import consumer_yaml, running_broker
from .kafka_helpers import (
    broker_config,
    create_topics,
    header,
    make_event,
    produce,
    produce_raw,
    read_topic,
    retry_state,
    write_config,
)
from .recording_server import Call, RecordingServer

pytestmark = pytest.mark.integration

SVC = "test.v1.Events"
NO_BREAKER = {"enabled": False}


def test_failing_service_b_does_not_disturb_a_and_ends_in_its_dlq_then_replays(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """B answers UNAVAILABLE (breaker off, so it is not paused): A gets each event exactly
    once; B's go through its retry topic into its DLQ after max-retry-attempts, with every
    header; ``courier dlq replay`` sends them back and, B healthy again, B gets each once."""
    topic = unique("orders")
    name_a, name_b = unique("svc-a"), unique("svc-b")
    with RecordingServer({SVC: ["A"]}) as a, RecordingServer({SVC: ["B"]}) as b:
        b.behaviour = lambda call: grpc.StatusCode.UNAVAILABLE
        config_path = tmp_path / "broker.yaml"
        config = write_config(
            config_path,
            {
                name_a: consumer_yaml(name_a, a.port, {topic: [f"{SVC}/A"]}),
                name_b: consumer_yaml(
                    name_b,
                    b.port,
                    {topic: [f"{SVC}/B"]},
                    max_retry_attempts=2,
                    **{"circuit-breaker": NO_BREAKER},
                ),
            },
        )
        create_topics(bootstrap_servers, config)
        events = produce(bootstrap_servers, [make_event(topic, key=f"k{i}") for i in range(10)])
        ids = {e.id for e in events}
        consumer_b = config.consumers[name_b]
        with running_broker(config, bootstrap_servers):
            b.wait_for(
                lambda: len(read_topic(bootstrap_servers, consumer_b.dlq_topic, 2)) == 10,
                40,
                "B's events in its DLQ",
            )
            a.wait_for(lambda: len(a.delivered("A")) == 10, 10, "A's deliveries")
            assert all(n == 1 for n in a.delivered("A").values())
            assert len(a.snapshot()) == 10  # A was never called again because of B

            # 1 first delivery + 2 retry-topic deliveries, each with 1 in-memory retry.
            attempts = sorted({c.attempt for c in b.snapshot()})
            assert attempts == [1, 2, 3]
            assert len(b.snapshot()) == 10 * 3 * 2
            retried = read_topic(bootstrap_servers, consumer_b.retry_topic)
            assert len(retried) == 20  # two hand-offs per event
            dead = read_topic(bootstrap_servers, consumer_b.dlq_topic)
            by_id = {header(m, "ce_id"): m for m in dead}
            assert set(by_id) == ids
            for event in events:
                record = by_id[event.id]
                state = retry_state(record)
                assert state.attempt == 2
                assert state.consumer == name_b
                assert state.failed_methods == (f"/{SVC}/B",)
                assert state.last_status == "UNAVAILABLE"
                assert state.last_error == "scripted"
                assert state.original_topic == topic
                assert state.dead_lettered_at_ms is not None
                assert record.value() == event.payload
                assert record.key() == event.kafka_key()
                for name, value in event.kafka_headers():
                    assert header(record, name) == value.decode()
            original = {(e.id): e for e in events}
            offsets = {
                (retry_state(m).original_partition, retry_state(m).original_offset) for m in dead
            }
            assert len(offsets) == 10
            assert len(original) == 10

            b.behaviour = lambda call: None
            replay = subprocess.run(
                [sys.executable, "-m", "courier", "dlq", "replay", name_b,
                 "--config", str(config_path), "--bootstrap-servers", bootstrap_servers],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert replay.returncode == 0, replay.stderr
            b.wait_for(lambda: len(b.delivered("B")) == 10, 20, "replayed events at B")
        assert set(b.delivered("B")) == ids
        assert all(n == 1 for n in b.delivered("B").values())
        assert len(a.snapshot()) == 10


def test_retry_goes_only_to_the_failed_method(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    """EndpointA fails its first delivery, EndpointB works: the retry topic brings each event
    back to EndpointA only (courier-attempt 2), and EndpointB got each event once."""
    topic, name = unique("deliveries"), unique("svc")

    def first_delivery_fails(call: Call) -> grpc.StatusCode | None:
        if call.method.endswith("/EndpointA") and call.attempt == 1:
            return grpc.StatusCode.UNAVAILABLE
        return None

    with RecordingServer({SVC: ["EndpointA", "EndpointB"]}) as server:
        server.behaviour = first_delivery_fails
        config = broker_config(
            {name: consumer_yaml(name, server.port, {topic: ["EndpointA", "EndpointB"]},
                                 **{"grpc-service": SVC, "circuit-breaker": NO_BREAKER})}
        )  # fmt: skip
        create_topics(bootstrap_servers, config)
        events = produce(bootstrap_servers, [make_event(topic) for _ in range(10)])
        with running_broker(config, bootstrap_servers):
            server.wait_for(lambda: len(server.delivered("EndpointA")) == 10, 30, "EndpointA")
        ids = {e.id for e in events}
        assert server.delivered("EndpointB") == dict.fromkeys(ids, 1)
        assert server.delivered("EndpointA") == dict.fromkeys(ids, 1)
        assert {c.attempt for c in server.calls_to("EndpointB")} == {1}
        assert {c.attempt for c in server.calls_to("EndpointA")} == {1, 2}
        retried = read_topic(bootstrap_servers, config.consumers[name].retry_topic)
        assert len(retried) == 10
        assert {retry_state(m).failed_methods for m in retried} == {(f"/{SVC}/EndpointA",)}
        assert read_topic(bootstrap_servers, config.consumers[name].dlq_topic, 2) == []


def test_invalid_argument_goes_straight_to_the_dlq_while_others_flow(
    bootstrap_servers: str, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    """A rejected event is called once and dead-lettered at once (no retry topic); the
    events around it are delivered."""
    topic, name = unique("shipments"), unique("svc")
    with RecordingServer({SVC: ["Handle"]}) as server:
        server.behaviour = lambda call: (
            (grpc.StatusCode.INVALID_ARGUMENT, "bad package")
            if call.payload.startswith(b"bad") else None
        )  # fmt: skip
        config = broker_config({name: consumer_yaml(name, server.port, {topic: [f"{SVC}/Handle"]})})
        create_topics(bootstrap_servers, config)
        events = [make_event(topic, payload=b"bad" if i % 5 == 0 else None) for i in range(20)]
        produce(bootstrap_servers, events)
        bad = {e.id for e in events if e.payload == b"bad"}
        good = {e.id for e in events} - bad
        consumer = config.consumers[name]
        caplog.set_level(logging.WARNING, logger="courier.broker")
        with running_broker(config, bootstrap_servers):
            server.wait_for(lambda: set(server.delivered("Handle")) == good, 30, "good events")
            server.wait_for(
                lambda: len(read_topic(bootstrap_servers, consumer.dlq_topic, 2)) == len(bad),
                20, "rejected events in the DLQ",
            )  # fmt: skip
        calls = server.snapshot()
        assert sorted(c.event_id for c in calls if c.event_id in bad) == sorted(bad)  # once each
        dead = read_topic(bootstrap_servers, consumer.dlq_topic)
        assert {header(m, "ce_id") for m in dead} == bad
        assert {retry_state(m).last_status for m in dead} == {"INVALID_ARGUMENT"}
        assert {retry_state(m).last_error for m in dead} == {"bad package"}
        assert {retry_state(m).attempt for m in dead} == {0}
        assert read_topic(bootstrap_servers, consumer.retry_topic, 2) == []
        failed = [r for r in caplog.records if r.getMessage() == "delivery failed"]
        assert {r.__dict__["event_id"] for r in failed} == bad  # one line per failure
        line = failed[0].__dict__
        assert (line["consumer"], line["method"], line["attempt"], line["status"]) == (
            name, f"/{SVC}/Handle", 1, "INVALID_ARGUMENT",
        )  # fmt: skip
        assert line["event_type"] == "packages.v1.PackageDelivered"
        assert not any(v == b"bad" for r in failed for v in r.__dict__.values())


def test_a_record_that_is_not_an_event_is_dead_lettered_not_fatal(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    """A record without ce_* headers goes to the DLQ with the reason; the loop goes on."""
    topic, name = unique("raw"), unique("svc")
    with RecordingServer({SVC: ["Handle"]}) as server:
        config = broker_config(
            {name: consumer_yaml(name, server.port, {topic: [f"{SVC}/Handle"]})}, partitions=1
        )
        create_topics(bootstrap_servers, config)
        produce_raw(bootstrap_servers, topic, b"\x08\x01", [("content-type", b"x")])
        after = produce(bootstrap_servers, [make_event(topic) for _ in range(3)])
        consumer = config.consumers[name]
        with running_broker(config, bootstrap_servers):
            server.wait_for(lambda: len(server.delivered("Handle")) == 3, 20, "later events")
            server.wait_for(
                lambda: len(read_topic(bootstrap_servers, consumer.dlq_topic, 2)) == 1, 10, "DLQ"
            )
        assert set(server.delivered("Handle")) == {e.id for e in after}
        (dead,) = read_topic(bootstrap_servers, consumer.dlq_topic)
        state = RetryState.from_headers(dead.headers())
        assert state is not None
        assert state.last_status == "INVALID_ARGUMENT"
        assert "ce_id" in state.last_error
        assert state.failed_methods == (f"/{SVC}/Handle",)
        assert (state.original_topic, state.original_offset) == (topic, 0)
        assert dead.value() == b"\x08\x01"
