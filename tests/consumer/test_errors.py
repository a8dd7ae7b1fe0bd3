"""The exception -> status table, and the per-method decorator on a plain grpc server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier.consumer import RejectEvent, RetryLater, map_errors, status_for_exception
from courier.consumer.metadata import MissingEventMetadata

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("exc", "code", "details"),
    [
        (RetryLater("warehouse API down"), Code.UNAVAILABLE, "warehouse API down"),
        (RetryLater("slow", code=Code.RESOURCE_EXHAUSTED), Code.RESOURCE_EXHAUSTED, "slow"),
        (RejectEvent("no such package"), Code.INVALID_ARGUMENT, "no such package"),
        (
            RejectEvent("already returned", code=Code.FAILED_PRECONDITION),
            Code.FAILED_PRECONDITION,
            "already returned",
        ),
        (MissingEventMetadata(["missing 'ce-id'"]), Code.INVALID_ARGUMENT, "missing 'ce-id'"),
        (DecodeError("truncated"), Code.INVALID_ARGUMENT, "cannot decode the event payload"),
        (KeyError("package"), Code.INTERNAL, "KeyError: 'package'"),
        (ZeroDivisionError(), Code.INTERNAL, "ZeroDivisionError"),
    ],
)
def test_status_table(exc: Exception, code: grpc.StatusCode, details: str) -> None:
    got_code, got_details = status_for_exception(exc)
    assert got_code is code
    assert details in got_details


def test_details_are_bounded() -> None:
    _, details = status_for_exception(ValueError("x" * 10_000))
    assert len(details) == 1000
    assert details.endswith("...")


def test_exceptions_refuse_codes_of_the_other_action() -> None:
    # RetryLater with a dead-letter code (or the reverse) would do the opposite of its name.
    with pytest.raises(ValueError, match="RetryLater takes one of"):
        RetryLater("x", code=Code.INVALID_ARGUMENT)
    with pytest.raises(ValueError, match="RejectEvent takes one of"):
        RejectEvent("x", code=Code.UNAVAILABLE)


class DecoratedEventsAPI(events_api_pb2_grpc.EventsAPIServicer):
    @map_errors
    def PackageCreated(self, request: events_pb2.PackageCreated, context: object) -> Empty:
        raise RetryLater(f"cannot store {request.package.id} yet")

    @map_errors
    def PackageDelivered(self, request: events_pb2.PackageDelivered, context: object) -> Empty:
        raise RejectEvent(f"{request.package.id} is unknown", code=Code.FAILED_PRECONDITION)

    @map_errors
    def PackageReturned(self, request: events_pb2.PackageReturned, context: object) -> Empty:
        return Empty() if request.reason else {}["reason"]


@pytest.fixture()
def plain_server_stub() -> Iterator[events_api_pb2_grpc.EventsAPIStub]:
    # A server the team built itself, without Courier's interceptor: only the decorator maps.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    events_api_pb2_grpc.add_EventsAPIServicer_to_server(DecoratedEventsAPI(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield events_api_pb2_grpc.EventsAPIStub(channel)
    server.stop(None)


def _code_of(call: object, request: object) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, timeout=5)  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return Code.OK, ""


def test_decorator_maps_on_a_server_without_the_interceptor(
    plain_server_stub: events_api_pb2_grpc.EventsAPIStub,
) -> None:
    stub = plain_server_stub
    created = events_pb2.PackageCreated()
    created.package.id = "p-1"
    delivered = events_pb2.PackageDelivered()
    delivered.package.id = "p-2"
    assert _code_of(stub.PackageCreated, created) == (Code.UNAVAILABLE, "cannot store p-1 yet")
    assert _code_of(stub.PackageDelivered, delivered) == (
        Code.FAILED_PRECONDITION,
        "p-2 is unknown",
    )
    assert _code_of(stub.PackageReturned, events_pb2.PackageReturned()) == (
        Code.INTERNAL,
        "KeyError: 'reason'",
    )
    returned = events_pb2.PackageReturned(reason="refused")
    assert _code_of(stub.PackageReturned, returned) == (Code.OK, "")
