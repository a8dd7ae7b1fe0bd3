"""How the broker lays out Kafka consumers: dedicated distributions, ``--only``, and
``ordering: key``. Real Kafka, real gRPC servers."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from courier.broker.runner import Broker

from .broker_harness import consumer_yaml, running_broker
from .kafka_helpers import broker_config, committed, create_topics, make_event, produce
from .recording_server import Call, RecordingServer

pytestmark = pytest.mark.integration

SVC = "test.v1.Events"


def test_dedicated_distribution_has_its_own_consumer_group(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    busy, quiet, name = unique("busy"), unique("quiet"), unique("svc")
    with RecordingServer({SVC: ["Busy", "Quiet"]}) as server:
        entry = consumer_yaml(name, server.port, {quiet: [f"{SVC}/Quiet"]})
        entry["distribution"] = [
            {"topic": busy, "services": [f"{SVC}/Busy"], "dedicated": True},
            {"topic": quiet, "services": [f"{SVC}/Quiet"]},
        ]
        config = broker_config({name: entry}, partitions=1)
        create_topics(bootstrap_servers, config)
        produce(bootstrap_servers, [make_event(busy) for _ in range(30)])
        produce(bootstrap_servers, [make_event(quiet) for _ in range(5)])
        with running_broker(config, bootstrap_servers) as broker:
            assert [loop.subscription.group_id for loop in broker.loops] == [
                f"courier.{name}", f"courier.{name}.{busy}",
            ]  # fmt: skip
            server.wait_for(lambda: len(server.delivered("Busy")) == 30, 20, "busy topic")
            server.wait_for(lambda: len(server.delivered("Quiet")) == 5, 20, "quiet topic")
            time.sleep(0.5)  # a commit interval
        assert committed(bootstrap_servers, f"courier.{name}.{busy}", busy, 1) == {0: 30}
        assert committed(bootstrap_servers, f"courier.{name}", quiet, 1) == {0: 5}


def test_only_runs_the_named_consumers(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    topic, first, second = unique("shared"), unique("first"), unique("second")
    with RecordingServer({SVC: ["A"]}) as a, RecordingServer({SVC: ["A"]}) as b:
        config = broker_config(
            {
                first: consumer_yaml(first, a.port, {topic: [f"{SVC}/A"]}),
                second: consumer_yaml(second, b.port, {topic: [f"{SVC}/A"]}),
            }
        )
        create_topics(bootstrap_servers, config)
        produce(bootstrap_servers, [make_event(topic) for _ in range(10)])
        with running_broker(config, bootstrap_servers, only=[second]):
            b.wait_for(lambda: len(b.delivered("A")) == 10, 20, "the sidecar's consumer")
        assert a.snapshot() == []


def test_ordering_by_key_delivers_each_key_in_order(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    """One partition, many keys: a key's events reach the method in the order produced even
    when one of them needs an in-memory retry, while other keys keep flowing."""
    topic, name = unique("ordered"), unique("svc")
    failed_once: set[str] = set()

    def flaky(call: Call) -> grpc.StatusCode | None:
        if call.payload.endswith(b"-0") and call.event_id not in failed_once:
            failed_once.add(call.event_id)
            return grpc.StatusCode.UNAVAILABLE
        return None

    with RecordingServer({SVC: ["A"]}, delay=0.005) as server:
        server.behaviour = flaky
        entry = consumer_yaml(name, server.port, {topic: [f"{SVC}/A"]}, batch_size=20)
        entry["distribution"] = [{"topic": topic, "services": [f"{SVC}/A"], "ordering": "key"}]
        config = broker_config({name: entry}, partitions=1)
        create_topics(bootstrap_servers, config)
        events = [
            make_event(topic, key=f"k{i % 4}", payload=f"{i % 4}-{i // 4}".encode())
            for i in range(40)
        ]
        produce(bootstrap_servers, events)
        with running_broker(config, bootstrap_servers):
            server.wait_for(lambda: len(server.delivered("A")) == 40, 30, "all events")
    ok = [c for c in server.snapshot() if c.code is grpc.StatusCode.OK]
    for key in range(4):
        sent = [e.id for e in events if e.key == f"k{key}"]
        assert [c.event_id for c in ok if c.event_id in set(sent)] == sent
    assert len(failed_once) == 4


def test_two_brokers_share_a_consumer_and_hand_over_on_stop(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    """Two broker instances of one consumer split its partitions through the group; when one
    stops, its partitions are revoked (in-flight work finished, done offsets committed) and
    the other takes them over: nothing is lost."""
    topic, name = unique("shared"), unique("svc")
    # 20 calls in flight (4 partitions x batch-size 5) of 50 ms each: at most 400 events/s,
    # so the topic takes 5 s or more, time enough for the second broker to join mid-way.
    total = 2000

    def commits(broker: Broker) -> float:
        value = broker.metrics.registry.get_sample_value(
            "courier_broker_committed_offsets_total", {"consumer": name}
        )
        return value or 0.0

    with RecordingServer({SVC: ["A"]}, delay=0.05, workers=24) as server:
        config = broker_config(
            {name: consumer_yaml(name, server.port, {topic: [f"{SVC}/A"]}, batch_size=5)},
            partitions=4,
        )
        create_topics(bootstrap_servers, config)
        events = produce(bootstrap_servers, [make_event(topic) for _ in range(total)])
        with running_broker(config, bootstrap_servers) as first:
            with running_broker(config, bootstrap_servers) as second:
                server.wait_for(lambda: commits(second) > 0, 30, "the second broker's commits")
                assert commits(first) > 0
                assert len(server.delivered("A")) < total
            # `second` stopped: `first` gets its partitions back and finishes the topic.
            server.wait_for(lambda: len(server.delivered("A")) == total, 60, "every event")
        delivered = server.delivered("A")
        assert set(delivered) == {e.id for e in events}
        duplicates = sum(n - 1 for n in delivered.values())
        print(f"\nhand-over between two brokers: lost=0 duplicates={duplicates}")
