"""The server interceptors (sync and asyncio): what the broker sees for each handler outcome."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError
from packages.v1 import events_api_pb2_grpc, events_pb2
from prometheus_client import REGISTRY

from courier.consumer import RejectEvent, RetryLater
from courier.consumer.testing import running

Code = grpc.StatusCode


def _outcome(reason: str, context: Any) -> Empty:
    """What a handler does for each `reason` of a PackageReturned event."""
    if reason == "retry":
        raise RetryLater("carrier API unavailable")
    if reason == "reject":
        raise RejectEvent("reason is not a known return reason")
    if reason == "precondition":
        raise RejectEvent("package was never delivered", code=Code.FAILED_PRECONDITION)
    if reason == "decode":
        raise DecodeError("nested payload is corrupt")
    if reason == "crash":
        raise RuntimeError("database connection reset")
    if reason == "set-code":
        context.set_code(Code.ALREADY_EXISTS)
        context.set_details("seen it")
    return Empty()


class SyncEventsAPI(events_api_pb2_grpc.EventsAPIServicer):
    def PackageReturned(self, request: events_pb2.PackageReturned, context: Any) -> Empty:
        if request.reason == "abort":
            context.abort(Code.NOT_FOUND, "no such package")
        return _outcome(request.reason, context)


class AsyncEventsAPI(events_api_pb2_grpc.EventsAPIServicer):
    async def PackageReturned(self, request: events_pb2.PackageReturned, context: Any) -> Empty:
        if request.reason == "abort":
            await context.abort(Code.NOT_FOUND, "no such package")
        return _outcome(request.reason, context)


EXPECTED = [
    ("ok", Code.OK, ""),
    ("retry", Code.UNAVAILABLE, "carrier API unavailable"),
    ("reject", Code.INVALID_ARGUMENT, "reason is not a known return reason"),
    ("precondition", Code.FAILED_PRECONDITION, "package was never delivered"),
    ("decode", Code.INVALID_ARGUMENT, "cannot decode the event payload: nested payload is corrupt"),
    ("crash", Code.INTERNAL, "RuntimeError: database connection reset"),
    ("abort", Code.NOT_FOUND, "no such package"),  # the handler's own choice stands
    ("set-code", Code.ALREADY_EXISTS, "seen it"),
]


@pytest.mark.parametrize("servicer_class", [SyncEventsAPI, AsyncEventsAPI])
def test_each_outcome_reaches_the_broker_as_its_status(servicer_class: type) -> None:
    with running(servicer_class()) as consumer:
        got = [
            (
                reason,
                *_answer(
                    consumer.deliver("PackageReturned", events_pb2.PackageReturned(reason=reason))
                ),
            )
            for reason, _, _ in EXPECTED
        ]
    assert got == EXPECTED


def _answer(result: Any) -> tuple[grpc.StatusCode, str]:
    return result.code, result.details


@pytest.mark.parametrize("servicer_class", [SyncEventsAPI, AsyncEventsAPI])
def test_payload_that_is_not_the_message_is_dead_lettered(servicer_class: type) -> None:
    # grpc alone answers a request it cannot decode with a retried status; Courier rejects it.
    with running(servicer_class()) as consumer:
        result = consumer.deliver("PackageReturned", b"\x0a\xff\xff", type="packages.v1.X")
    assert result.code is Code.INVALID_ARGUMENT
    assert result.details.startswith("cannot decode the event payload")


def test_unimplemented_method_of_the_generated_base_is_dead_lettered() -> None:
    with running(SyncEventsAPI()) as consumer:
        result = consumer.deliver("PackageCreated", events_pb2.PackageCreated())
    assert result.code is Code.UNIMPLEMENTED


def test_outcomes_are_counted_by_method_and_code() -> None:
    labels = {"method": "/packages.v1.EventsAPI/PackageReturned", "outcome": "unavailable"}

    def count() -> float:
        return REGISTRY.get_sample_value("courier_consumer_handled_total", labels) or 0.0

    before = count()
    with running(SyncEventsAPI()) as consumer:
        for _ in range(3):
            consumer.deliver("PackageReturned", events_pb2.PackageReturned(reason="retry"))
    assert count() - before == 3
    seconds = REGISTRY.get_sample_value(
        "courier_consumer_handler_seconds_count",
        {"method": "/packages.v1.EventsAPI/PackageReturned"},
    )
    assert seconds is not None and seconds >= 3


def test_failures_log_one_line_with_the_event(caplog: pytest.LogCaptureFixture) -> None:
    with running(SyncEventsAPI()) as consumer:
        result = consumer.deliver(
            "PackageReturned", events_pb2.PackageReturned(reason="crash"), attempt=4
        )
    lines = [r for r in caplog.records if r.name == "courier.consumer" and r.levelname == "WARNING"]
    assert len(lines) == 1
    record = lines[0]
    assert record.__dict__["event_id"] == result.event.id
    assert record.__dict__["attempt"] == 4
    assert record.__dict__["status"] == "INTERNAL"
    assert record.__dict__["event_type"] == "packages.v1.PackageReturned"
