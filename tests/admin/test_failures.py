"""ObservedDeliverer against a real loopback gRPC server: every failed call is logged, OK
calls are not (this also guards the hook: it overrides ConsumerDeliverer._call)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
from broker.broker_harness import consumer_yaml
from broker.kafka_helpers import broker_config
from broker.recording_server import Call, RecordingServer

from courier.broker.breaker import CircuitBreaker
from courier.broker.delivery import delivery_request
from courier.events import EventEnvelope
from courier.observability.admin.failures import FailureLog, ObservedDeliverer

SVC = "test.v1.Events"


def test_failed_calls_are_recorded_with_the_event_and_status() -> None:
    event = EventEnvelope(id="ev-1", type="a.v1.T", source="tests", topic="t", key=None,
                          payload=b"x", time=datetime.now(UTC), headers={})  # fmt: skip
    with RecordingServer({SVC: ["Good", "Bad"]}, reflect=False) as server:

        def answer(call: Call) -> tuple[grpc.StatusCode, str] | None:
            return (grpc.StatusCode.UNAVAILABLE, "down") if call.method.endswith("Bad") else None

        server.behaviour = answer
        config = broker_config({"svc": consumer_yaml("svc", server.port, {"t": [f"{SVC}/Good"]})})
        consumer = config.consumers["svc"]
        log = FailureLog()
        deliverer = ObservedDeliverer(consumer, CircuitBreaker(consumer.breaker), failures=log)

        async def deliver() -> list[str]:
            await deliverer.open()
            try:
                outcomes = await deliverer.deliver(
                    [f"/{SVC}/Good", f"/{SVC}/Bad"], delivery_request(event, attempt=3)
                )
                return [o.status for o in outcomes]
            finally:
                await deliverer.close()

        assert asyncio.run(deliver()) == ["OK", "UNAVAILABLE"]
    failures = log.recent("svc")
    calls = 1 + consumer.retry.attempts  # the first call and its in-memory retries
    assert len(failures) == calls == log.total("svc")
    seen = {(f.event_id, f.event_type, f.method, f.status, f.details, f.attempt) for f in failures}
    assert seen == {("ev-1", "a.v1.T", f"/{SVC}/Bad", "UNAVAILABLE", "down", 3)}
