"""courier.consumer.testing: deliver an event to a servicer as the broker would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier.consumer import EventMetadata, build_server, event_metadata
from courier.consumer.testing import deliver, resolve_method, running

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
    """The article's consumer, as a team writes it: a plain generated servicer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, events_pb2.PackageDelivered, EventMetadata]] = []

    def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        self.seen.append(("EndpointA", request, event_metadata(context)))
        return Empty()

    def EndpointB(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        self.seen.append(("EndpointB", request, event_metadata(context)))
        return Empty()


def _delivered(package_id: str = "p-1") -> events_pb2.PackageDelivered:
    message = events_pb2.PackageDelivered(received_by="Ana")
    message.package.id = package_id
    return message


def test_handler_gets_the_message_and_the_broker_metadata() -> None:
    servicer = ServiceA()
    sent_at = datetime(2026, 3, 17, 10, 0, tzinfo=UTC)
    result = deliver(
        servicer,
        "EndpointA",
        _delivered(),
        event_id="evt-1",
        source="packages-service",
        time=sent_at,
        attempt=2,
        traceparent=TRACEPARENT,
    )
    assert result.ok and result.code is grpc.StatusCode.OK
    assert result.response == Empty()
    [(method, request, event)] = servicer.seen
    assert method == "EndpointA"
    assert request == _delivered()
    assert event == EventMetadata(
        id="evt-1",
        type="packages.v1.PackageDelivered",
        source="packages-service",
        time=sent_at,
        attempt=2,
        traceparent=TRACEPARENT,
    )


def test_raw_bytes_are_delivered_unchanged_with_the_methods_input_type() -> None:
    servicer = ServiceA()
    payload = _delivered("p-raw").SerializeToString()
    result = deliver(servicer, "packages.v1.ServiceAEventsAPI/EndpointB", payload)
    assert result.ok
    [(_, request, event)] = servicer.seen
    assert request.SerializeToString() == payload
    assert event.type == "packages.v1.PackageDelivered"
    assert event.attempt == 1


def test_one_server_for_many_deliveries_and_a_redelivery() -> None:
    servicer = ServiceA()
    with running(servicer) as consumer:
        first = consumer.deliver("EndpointA", _delivered(), event_id="evt-7")
        again = consumer.deliver(
            "/packages.v1.ServiceAEventsAPI/EndpointA", _delivered(), event_id="evt-7", attempt=2
        )
        deliver(consumer.address, "packages.v1.ServiceAEventsAPI/EndpointB", _delivered())
    assert first.ok and again.ok
    assert [(m, e.id, e.attempt) for m, _, e in servicer.seen][:2] == [
        ("EndpointA", "evt-7", 1),
        ("EndpointA", "evt-7", 2),
    ]
    assert servicer.seen[2][0] == "EndpointB"


def test_target_can_be_a_production_server_already_running() -> None:
    servicer = ServiceA()
    with build_server(servicer) as server:
        result = deliver(server.address, "packages.v1.ServiceAEventsAPI/EndpointA", _delivered())
    assert result.ok
    assert len(servicer.seen) == 1


def test_several_servicers_share_one_server() -> None:
    class EventsAPI(events_api_pb2_grpc.EventsAPIServicer):
        def PackageCreated(self, request: events_pb2.PackageCreated, context: Any) -> Empty:
            return Empty()

    result = deliver([ServiceA(), EventsAPI()], "PackageCreated", events_pb2.PackageCreated())
    assert result.ok


def test_method_names_resolve_or_say_what_exists() -> None:
    methods = {"a.v1.One": ("Same", "OnlyHere"), "a.v1.Two": ("Same",)}
    assert resolve_method("OnlyHere", methods) == "/a.v1.One/OnlyHere"
    assert resolve_method("a.v1.Two/Same", methods) == "/a.v1.Two/Same"
    with pytest.raises(ValueError, match=r"ambiguous: a\.v1\.One, a\.v1\.Two"):
        resolve_method("Same", methods)
    with pytest.raises(ValueError, match=r"no method 'Nope' .*a\.v1\.One/OnlyHere"):
        resolve_method("Nope", methods)


def test_an_async_servicer_runs_on_the_asyncio_server() -> None:
    seen: list[int] = []

    class AsyncServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
        async def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
            seen.append(event_metadata(context).attempt)
            return Empty()

    result = deliver(AsyncServiceA(), "EndpointA", _delivered(), attempt=5)
    assert result.ok
    assert seen == [5]
