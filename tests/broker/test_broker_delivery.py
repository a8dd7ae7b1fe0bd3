"""The broker end to end: real Kafka (dev stack), real gRPC servers in this process.

Scenarios from issue 4's "Done means": the article's two consumers, isolation between
services, retries only to the failed method, straight to the DLQ on INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from packages.v1 import events_api_pb2  # noqa: F401  (descriptors for server reflection)

from .broker_harness import consumer_yaml, running_broker
from .kafka_helpers import (
    broker_config,
    create_topics,
    make_event,
    produce,
)
from .recording_server import RecordingServer

pytestmark = pytest.mark.integration

SERVICE_A = "packages.v1.ServiceAEventsAPI"
SERVICE_B = "packages.v1.ServiceBEventsAPI"


def test_article_config_delivers_each_topic_to_its_methods(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    """event_y reaches EndpointA and EndpointB of service-a; event_x reaches EndpointC of
    service-b. Methods are bare names, resolved through server reflection."""
    event_y, event_x = unique("event_y"), unique("event_x")
    with (
        RecordingServer({SERVICE_A: ["EndpointA", "EndpointB"]}) as a,
        RecordingServer({SERVICE_B: ["EndpointC"]}) as b,
    ):
        config = broker_config(
            {
                unique("service-a"): consumer_yaml(
                    unique("service_a"), a.port, {event_y: ["EndpointA", "EndpointB"]}
                ),
                unique("service-b"): consumer_yaml(
                    unique("service_b"), b.port, {event_x: ["EndpointC"]}, batch_size=5
                ),
            }
        )
        create_topics(bootstrap_servers, config)
        ys = produce(bootstrap_servers, [make_event(event_y, key=f"k{i}") for i in range(20)])
        xs = produce(bootstrap_servers, [make_event(event_x) for _ in range(20)])
        with running_broker(config, bootstrap_servers):
            a.wait_for(lambda: len(a.delivered("EndpointB")) == 20, 30, "EndpointB")
            a.wait_for(lambda: len(a.delivered("EndpointA")) == 20, 30, "EndpointA")
            b.wait_for(lambda: len(b.delivered("EndpointC")) == 20, 30, "EndpointC")
    assert set(a.delivered("EndpointA")) == {e.id for e in ys}
    assert set(a.delivered("EndpointB")) == {e.id for e in ys}
    assert set(b.delivered("EndpointC")) == {e.id for e in xs}
    assert all(c.method == f"/{SERVICE_A}/EndpointA" for c in a.calls_to("EndpointA"))
    first = a.calls_to("EndpointA")[0]
    sent = next(e for e in ys if e.id == first.event_id)
    assert first.payload == sent.payload
    assert first.metadata["ce-type"] == sent.type
    assert first.metadata["ce-source"] == "tests"
    assert first.metadata["courier-attempt"] == "1"
    assert first.metadata["traceparent"] == sent.headers["traceparent"]
    assert "ce-time" in first.metadata
