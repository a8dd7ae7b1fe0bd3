"""ConsumerDeliverer against a real gRPC server on loopback (no Kafka): metadata, raw bytes,
in-memory retries, the breaker making events wait, and reflection for bare method names."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2  # noqa: F401
from packages.v1 import events_api_pb2  # noqa: F401  (descriptors for server reflection)

from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import ConsumerConfig
from courier.broker.delivery import ConsumerDeliverer, delivery_request
from courier.broker.method_resolution import MethodResolutionError, resolve_paths
from courier.broker.metrics import BrokerMetrics
from courier.broker.status_actions import Action

from .kafka_helpers import broker_config, make_event
from .recording_server import RecordingServer

SVC = "test.v1.Events"


def consumer(port: int, services: list[str], **extra: object) -> ConsumerConfig:
    entry = {
        "grpc-server-hostname": "127.0.0.1",
        "grpc-server-port": port,
        "max-retry-attempts": 1,
        "batch-size": 1,
        "retry-topic": "r",
        "dlq-topic": "d",
        "call-timeout": "1s",
        "in-memory-retry": {"attempts": 2, "base-backoff": "10ms", "max-backoff": "20ms"},
        "distribution": [{"topic": "t", "services": services}],
        **extra,
    }
    return broker_config({"svc": entry}).consumers["svc"]


def deliver(config: ConsumerConfig, breaker: CircuitBreaker, methods: list[str], attempt: int = 1):  # type: ignore[no-untyped-def]
    event = make_event("t", key="k")

    async def run():  # type: ignore[no-untyped-def]
        deliverer = ConsumerDeliverer(config, breaker, BrokerMetrics())
        await deliverer.open()
        try:
            return await deliverer.deliver(methods, delivery_request(event, attempt))
        finally:
            await deliverer.close()

    return event, asyncio.run(run())


def test_sends_the_payload_and_metadata_unchanged() -> None:
    with RecordingServer({SVC: ["A", "B"]}) as server:
        config = consumer(server.port, [f"{SVC}/A"])
        breaker = CircuitBreaker(config.breaker)
        event, outcomes = deliver(config, breaker, [f"/{SVC}/A", f"/{SVC}/B"], attempt=3)
    assert [o.action for o in outcomes] == [Action.COMMIT, Action.COMMIT]
    calls = sorted(server.snapshot(), key=lambda c: c.method)
    assert [c.method for c in calls] == [f"/{SVC}/A", f"/{SVC}/B"]
    for call in calls:
        assert call.payload == event.payload
        assert call.metadata["ce-id"] == event.id
        assert call.metadata["ce-type"] == event.type
        assert call.metadata["ce-source"] == event.source
        assert call.metadata["courier-attempt"] == "3"
        assert call.metadata["traceparent"] == event.headers["traceparent"]


def test_in_memory_retries_then_the_last_outcome() -> None:
    with RecordingServer({SVC: ["A"]}) as server:
        server.behaviour = lambda call: grpc.StatusCode.RESOURCE_EXHAUSTED
        config = consumer(server.port, [f"{SVC}/A"], **{"circuit-breaker": {"enabled": False}})
        _, (outcome,) = deliver(config, CircuitBreaker(config.breaker), [f"/{SVC}/A"])
    assert outcome.action is Action.RETRY
    assert outcome.calls == 3  # 1 + attempts: 2
    assert len(server.snapshot()) == 3


def test_recovers_within_the_in_memory_retries() -> None:
    with RecordingServer({SVC: ["A"]}) as server:
        answers = iter([grpc.StatusCode.UNAVAILABLE, None])
        server.behaviour = lambda call: next(answers)
        config = consumer(server.port, [f"{SVC}/A"])
        _, (outcome,) = deliver(config, CircuitBreaker(config.breaker), [f"/{SVC}/A"])
    assert (outcome.code, outcome.calls) == (grpc.StatusCode.OK, 2)


def test_dead_letter_status_is_not_retried() -> None:
    with RecordingServer({SVC: ["A"]}) as server:
        server.behaviour = lambda call: (grpc.StatusCode.NOT_FOUND, "no such package")
        config = consumer(server.port, [f"{SVC}/A"])
        _, (outcome,) = deliver(config, CircuitBreaker(config.breaker), [f"/{SVC}/A"])
    assert (outcome.action, outcome.calls, outcome.details) == (
        Action.DEAD_LETTER, 1, "no such package",
    )  # fmt: skip


def test_an_unreachable_server_is_unavailable_not_an_exception() -> None:
    config = consumer(1, [f"{SVC}/A"], **{"circuit-breaker": {"enabled": False}})
    _, (outcome,) = deliver(config, CircuitBreaker(config.breaker), [f"/{SVC}/A"])
    assert outcome.code is grpc.StatusCode.UNAVAILABLE


def test_open_breaker_makes_the_event_wait_instead_of_spending_retries() -> None:
    """Retries run out while the service is down, yet the outcome waits for the breaker and
    is OK once the service is back: nothing would be handed off during the outage."""
    down = threading.Event()
    down.set()
    with RecordingServer({SVC: ["A"]}) as server:
        server.behaviour = lambda call: grpc.StatusCode.UNAVAILABLE if down.is_set() else None
        config = consumer(
            server.port, [f"{SVC}/A"],
            **{"circuit-breaker": {"failure-threshold": 2, "open-seconds": "200ms",
                                   "probe-interval": "100ms"}},
        )  # fmt: skip
        breaker = CircuitBreaker(config.breaker)
        timer = threading.Timer(0.8, down.clear)
        timer.start()
        started = time.monotonic()
        _, (outcome,) = deliver(config, breaker, [f"/{SVC}/A"])
        timer.join()
    assert outcome.code is grpc.StatusCode.OK
    assert time.monotonic() - started >= 0.8
    assert breaker.state is BreakerState.CLOSED
    assert outcome.calls <= 2 + 0.8 / 0.1 + 2


def test_bare_methods_resolve_through_reflection() -> None:
    services = {"packages.v1.ServiceAEventsAPI": ["EndpointA", "EndpointB"]}
    with RecordingServer(services) as server:
        config = consumer(server.port, ["EndpointA", "packages.v1.ServiceAEventsAPI/EndpointB"])
        assert resolve_paths(config) == {
            "t": ("/packages.v1.ServiceAEventsAPI/EndpointA",
                  "/packages.v1.ServiceAEventsAPI/EndpointB")
        }  # fmt: skip
        with pytest.raises(MethodResolutionError, match=r"no service .* 'EndpointZ'"):
            resolve_paths(consumer(server.port, ["EndpointZ"]))


def _two_services_with_ping() -> list[str]:
    """Register (once) a file with two services that both have a method ``Ping``."""
    names = ["brokertest.v1.First", "brokertest.v1.Second"]
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(names[0])
        return names
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name="brokertest/v1/ping.proto", package="brokertest.v1", syntax="proto3",
        dependency=["google/protobuf/empty.proto"],
    )  # fmt: skip
    for name in ("First", "Second"):
        service = proto.service.add(name=name)
        service.method.add(
            name="Ping", input_type=".google.protobuf.Empty", output_type=".google.protobuf.Empty"
        )
    pool.Add(proto)
    return names


def test_ambiguous_bare_method_is_an_error() -> None:
    services = {name: ["Ping"] for name in _two_services_with_ping()}
    with RecordingServer(services) as server:
        with pytest.raises(MethodResolutionError, match="several services"):
            resolve_paths(consumer(server.port, ["Ping"]))
        assert resolve_paths(consumer(server.port, ["brokertest.v1.Second/Ping"])) == {
            "t": ("/brokertest.v1.Second/Ping",)
        }
