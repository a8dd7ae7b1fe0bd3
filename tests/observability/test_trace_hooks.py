"""Each stage's tracing hook on its own, without the dev stack: the outbox ``create`` span
(SQLite), the consumer kit's SERVER span (sync and asyncio servers), the trace links a retry
record carries, and :func:`configure_tracing` in a fresh process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier import build_event
from courier.broker.delivery_trace import with_trace_links
from courier.consumer import RetryLater
from courier.consumer.testing import deliver
from courier.observability.tracing import TRACE_LINKS_HEADER, context_from_headers
from courier.outbox.builder import OutboxTableMissing
from courier.outbox.table import create_table_statements

from .trace_harness import in_memory_spans, named, parent_id, span_id, traceparent

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
METHOD = "packages.v1.ServiceAEventsAPI/EndpointA"


@pytest.fixture()
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    with in_memory_spans() as pair:
        yield pair


def _message() -> events_pb2.PackageDelivered:
    message = events_pb2.PackageDelivered(received_by="ana")
    message.package.id = "p-1"
    return message


def _sqlite_outbox() -> sqlite3.Connection:
    """An in-memory SQLite database with the outbox table."""
    conn = sqlite3.connect(":memory:")
    for statement in create_table_statements("sqlite", "courier_outbox"):
        conn.execute(statement)
    return conn


def test_outbox_save_stores_the_create_spans_context(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    conn = _sqlite_outbox()
    with provider.get_tracer("shop").start_as_current_span("deliver package"), conn:
        saved = build_event(_message(), topic="parcels", headers={"tenant": "acme"}).save(
            conn, allow_outside_transaction=True
        )
    [root] = named(exporter.get_finished_spans(), "deliver package")
    [create] = named(exporter.get_finished_spans(), "create parcels")
    assert create.kind is SpanKind.PRODUCER and parent_id(create) == span_id(root)
    assert create.attributes is not None
    assert create.attributes["messaging.message.id"] == saved.id
    assert create.attributes["messaging.kafka.message.key"] == "p-1"
    assert saved.headers == {"tenant": "acme", "traceparent": traceparent(create)}
    [(stored,)] = conn.execute("SELECT headers FROM courier_outbox").fetchall()
    assert json.loads(stored) == dict(saved.headers)


def test_an_explicit_parent_and_its_tracestate_are_continued(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = spans
    conn = _sqlite_outbox()
    given = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc"}
    saved = build_event(_message(), topic="parcels", headers=given).save(
        conn, allow_outside_transaction=True
    )
    [create] = exporter.get_finished_spans()
    assert create.parent is not None and create.parent.span_id == 0x00F067AA0BA902B7
    assert saved.headers == {"traceparent": traceparent(create), "tracestate": "vendor=abc"}
    result = deliver(ServiceA(), "EndpointA", _message(), **saved.headers)
    assert result.ok
    [server] = named(exporter.get_finished_spans(), METHOD)
    assert server.parent is not None and server.parent.span_id == span_id(create)
    context = server.get_span_context()
    assert context is not None and context.trace_state.to_header() == "vendor=abc"


def test_a_failed_outbox_write_ends_its_span_as_an_error(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = spans
    conn = sqlite3.connect(":memory:")  # no outbox table
    with pytest.raises(OutboxTableMissing), conn:
        build_event(_message(), topic="parcels").save(conn, allow_outside_transaction=True)
    [create] = exporter.get_finished_spans()
    assert parent_id(create) is None  # no active span: the event starts its own trace
    assert create.status.status_code is StatusCode.ERROR


def test_without_a_provider_the_outbox_stores_the_callers_context() -> None:
    tracer = TracerProvider().get_tracer("shop")  # not Courier's provider: tracing is off
    conn = _sqlite_outbox()
    with tracer.start_as_current_span("deliver package") as span, conn:
        event = build_event(_message(), topic="parcels")
        saved = event.save(conn, allow_outside_transaction=True)
    assert saved is event.envelope
    context = span.get_span_context()
    flags = int(context.trace_flags)
    assert saved.headers["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    )


class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.current: list[trace.SpanContext] = []

    def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        self.current.append(trace.get_current_span().get_span_context())
        if request.received_by == "later":
            raise RetryLater("busy")
        return Empty()

    def EndpointB(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        return Empty()


class AsyncServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.current: list[trace.SpanContext] = []

    async def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        self.current.append(trace.get_current_span().get_span_context())
        return Empty()

    async def EndpointB(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        return Empty()


@pytest.mark.parametrize("servicer_type", [ServiceA, AsyncServiceA], ids=["sync", "asyncio"])
def test_the_handler_runs_in_a_server_span_continuing_the_calls_traceparent(
    spans: tuple[TracerProvider, InMemorySpanExporter], servicer_type: type
) -> None:
    _, exporter = spans
    servicer = servicer_type()
    result = deliver(servicer, "EndpointA", _message(), event_id="e-1", traceparent=TRACEPARENT)
    assert result.ok
    [server] = named(exporter.get_finished_spans(), METHOD)
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None and server.parent.is_remote
    assert f"{server.parent.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent.span_id == 0x00F067AA0BA902B7
    assert server.attributes is not None
    assert server.attributes["messaging.message.id"] == "e-1"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert servicer.current == [server.get_span_context()]


def test_a_failing_handler_is_an_error_span_with_the_exception(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = spans
    message = _message()
    message.received_by = "later"
    result = deliver(ServiceA(), "EndpointA", message, traceparent=TRACEPARENT)
    assert result.code is grpc.StatusCode.UNAVAILABLE
    [server] = named(exporter.get_finished_spans(), METHOD)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert [e.name for e in server.events] == ["exception"]


def test_a_call_without_traceparent_starts_a_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = spans
    assert deliver(ServiceA(), "EndpointA", _message()).ok
    [server] = exporter.get_finished_spans()
    assert server.parent is None


def test_retry_record_headers_name_the_failed_deliveries_once() -> None:
    from dataclasses import dataclass

    @dataclass
    class Outcome:
        traceparent: str | None

    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers: list[tuple[str, bytes | None]] = [
        ("traceparent", TRACEPARENT.encode()),
        (TRACE_LINKS_HEADER, b"stale"),
        ("courier-attempt", b"0"),
    ]
    updated = with_trace_links(headers, [Outcome(other), Outcome(None), Outcome(other)])  # type: ignore[list-item]
    assert updated == [
        ("traceparent", TRACEPARENT.encode()),
        ("courier-attempt", b"0"),
        (TRACE_LINKS_HEADER, other.encode()),
    ]
    assert with_trace_links(headers, []) == [headers[0], headers[2]]
    assert context_from_headers(updated) is not None


CONSOLE_SCRIPT = """
from opentelemetry import trace
from courier.observability.tracing import configure_tracing, tracer
assert configure_tracing("svc-from-flag")
with tracer().start_as_current_span("hello"):
    pass
trace.get_tracer_provider().shutdown()
"""

OTLP_MISSING_SCRIPT = """
import logging
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from courier.observability.tracing import configure_tracing, tracing_enabled
try:
    import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    print("otlp exporter installed")
except ImportError:
    assert configure_tracing("svc") is False
    assert not tracing_enabled()
"""


@pytest.mark.timeout(60)
def test_configure_tracing_from_the_environment_in_a_fresh_process() -> None:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CONSOLE_SCRIPT)],
        env={**base, "OTEL_TRACES_EXPORTER": "console"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert run.returncode == 0, run.stderr
    span = json.loads(run.stdout)
    assert span["name"] == "hello"
    assert span["resource"]["attributes"]["service.name"] == "svc-from-flag"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OTLP_MISSING_SCRIPT)],
        env={**base, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert run.returncode == 0, run.stderr
    assert "otlp exporter installed" in run.stdout or "not installed" in run.stderr
