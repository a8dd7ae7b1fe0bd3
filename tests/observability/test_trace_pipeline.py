"""One trace per event, end to end: producer span -> outbox -> relay -> Kafka -> broker -> handler.

Everything is real (Postgres, the relay, Kafka, the broker engine, a consumer-kit gRPC
server); the spans go to an in-memory exporter through an SDK tracer provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg2
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from packages.v1 import events_pb2

from courier import build_event
from courier.broker.dlq_replay import RecordFilter, replay
from courier.consumer import build_server
from courier.events import EventEnvelope
from courier.observability.tracing import TRACE_LINKS_HEADER
from courier.relay.testing import ConsumedRecord, RelayThread, postgres_outbox_table, read_topic

from .trace_harness import (
    SERVICE,
    TracedServiceA,
    broker_config,
    in_memory_spans,
    named,
    parent_id,
    poll_relay,
    running_broker,
    span_id,
    trace_id,
    traceparent,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELIVER = f"deliver {SERVICE}/EndpointA"
HANDLE = f"{SERVICE}/EndpointA"


@dataclass
class Run:
    saved: EventEnvelope
    spans: tuple[ReadableSpan, ...]
    servicer: TracedServiceA
    topic: str
    consumer: str

    def one(self, name: str) -> ReadableSpan:
        found = named(self.spans, name)
        assert len(found) == 1, f"{name}: {[s.name for s in self.spans]}"
        return found[0]


@contextlib.contextmanager
def _pipeline(
    bootstrap_servers: str,
    database_url: str,
    unique: Callable[[str], str],
    servicer: TracedServiceA,
    relay_mode: str,
) -> Iterator[tuple[Callable[[], EventEnvelope], InMemorySpanExporter, str, str]]:
    """Start every stage; yields (write one event, exporter, topic, consumer name)."""
    topic, consumer = unique("trace.parcels"), unique("trace-svc")
    with contextlib.ExitStack() as stack:
        provider, exporter = stack.enter_context(in_memory_spans())
        table = stack.enter_context(postgres_outbox_table(database_url, unique("trace_outbox")))
        server = stack.enter_context(build_server(servicer))
        stack.enter_context(running_broker(broker_config(consumer, server.port, topic),
                                           bootstrap_servers))  # fmt: skip
        if relay_mode == "log":
            relay = RelayThread(database_url, bootstrap_servers, table=table,
                                slot=unique("trace_slot"))  # fmt: skip
            stack.enter_context(relay)
        else:
            stack.enter_context(poll_relay(database_url, bootstrap_servers, table))

        def write() -> EventEnvelope:
            message = events_pb2.PackageDelivered(received_by="ana")
            message.package.id = "p-1"
            conn = psycopg2.connect(database_url)
            try:
                tracer = provider.get_tracer("shop")
                with tracer.start_as_current_span("deliver package"), conn:
                    return build_event(message, topic=topic).save(conn, table=table)
            finally:
                conn.close()

        yield write, exporter, topic, consumer


def _run(
    bootstrap_servers: str,
    database_url: str,
    unique: Callable[[str], str],
    servicer: TracedServiceA,
    relay_mode: str,
    deliveries: int,
    between: Callable[[str, str], None] | None = None,
) -> Run:
    with _pipeline(bootstrap_servers, database_url, unique, servicer, relay_mode) as (
        write, exporter, topic, consumer,
    ):  # fmt: skip
        saved = write()

        def delivered(n: int) -> Callable[[], bool]:
            return lambda: len(named(exporter.get_finished_spans(), DELIVER)) >= n

        wait_for(delivered(1), 60, "the first delivery span")
        if between is not None:
            between(topic, consumer)
        wait_for(delivered(deliveries), 60, f"{deliveries} delivery spans")
        wait_for(lambda: len(named(exporter.get_finished_spans(), HANDLE)) >= len(servicer.calls),
                 10, "the handler spans")  # fmt: skip
        return Run(saved, exporter.get_finished_spans(), servicer, topic, consumer)


def _assert_trunk(run: Run) -> tuple[ReadableSpan, ReadableSpan]:
    """The producer's span, the ``create`` span under it and the relay's ``send`` span under
    that; returns (create, send)."""
    root = run.one("deliver package")
    create = run.one(f"create {run.topic}")
    send = run.one(f"send {run.topic}")
    assert parent_id(root) is None
    assert parent_id(create) == span_id(root) and create.kind is SpanKind.PRODUCER
    assert parent_id(send) == span_id(create) and send.kind is SpanKind.PRODUCER
    assert run.saved.headers["traceparent"] == traceparent(create)
    for span in (create, send):
        assert span.attributes is not None
        assert span.attributes["messaging.system"] == "kafka"
        assert span.attributes["messaging.destination.name"] == run.topic
        assert span.attributes["messaging.message.id"] == run.saved.id
    assert send.attributes is not None and "messaging.kafka.offset" in send.attributes
    assert send.status.status_code is StatusCode.UNSET
    return create, send


def test_one_trace_from_the_producer_span_to_the_consumer_handler(
    bootstrap_servers: str, database_url: str, unique: Callable[[str], str]
) -> None:
    servicer = TracedServiceA()
    run = _run(bootstrap_servers, database_url, unique, servicer, "log", deliveries=1)

    create, _send = _assert_trunk(run)
    deliver = run.one(DELIVER)
    handle = run.one(HANDLE)
    assert len({trace_id(s) for s in run.spans}) == 1, "every span is in one trace"
    assert len(run.spans) == 5
    assert parent_id(deliver) == span_id(create) and deliver.kind is SpanKind.CLIENT
    assert parent_id(handle) == span_id(deliver) and handle.kind is SpanKind.SERVER
    assert deliver.attributes is not None
    assert deliver.attributes["courier.outcome"] == "commit"
    assert deliver.attributes["courier.attempt"] == 1
    assert deliver.attributes["rpc.grpc.status_code"] == 0
    assert deliver.attributes["messaging.message.id"] == run.saved.id
    assert not deliver.links
    assert not deliver.events  # delivered at the first call: nothing to note
    # The Kafka record carries the creation context; the handler sees the delivery's.
    record = read_topic(bootstrap_servers, run.topic, count=1)[0]
    assert record.header("traceparent") == traceparent(create)
    [call] = run.servicer.calls
    assert call.traceparent == traceparent(deliver)
    assert call.span_context.span_id == span_id(handle)


def _retry_record(bootstrap_servers: str, consumer: str) -> ConsumedRecord:
    return read_topic(bootstrap_servers, f"{consumer}_retry", count=1, timeout=10)[0]


def test_a_retried_delivery_links_to_the_failed_one(
    bootstrap_servers: str, database_url: str, unique: Callable[[str], str]
) -> None:
    """Attempt 1 fails (RetryLater, twice with the in-memory retry), the event goes through
    the retry topic, attempt 2 succeeds: two delivery spans in the event's trace, the second
    linked to the first."""
    servicer = TracedServiceA(fail_attempts=frozenset({1}))
    run = _run(bootstrap_servers, database_url, unique, servicer, "poll", deliveries=2)

    create, _send = _assert_trunk(run)
    first, second = named(run.spans, DELIVER)
    assert len({trace_id(s) for s in run.spans}) == 1
    assert parent_id(first) == parent_id(second) == span_id(create)
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["courier.attempt"], first.attributes["courier.outcome"]) == (
        1, "retry",
    )  # fmt: skip
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["rpc.grpc.status_code"] == 14  # UNAVAILABLE
    assert [e.name for e in first.events] == ["call", "call"]  # one in-memory retry
    assert (second.attributes["courier.attempt"], second.attributes["courier.outcome"]) == (
        2, "commit",
    )  # fmt: skip
    assert [link.context.span_id for link in second.links] == [span_id(first)]
    handled = named(run.spans, HANDLE)
    assert [parent_id(s) for s in handled] == [span_id(first)] * 2 + [span_id(second)]
    assert [s.status.status_code for s in handled] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    # The retry record keeps the creation context and names the failed delivery.
    record = _retry_record(bootstrap_servers, run.consumer)
    assert record.header("traceparent") == traceparent(create)
    assert record.header(TRACE_LINKS_HEADER) == traceparent(first)


def test_a_dlq_replay_links_to_the_dead_lettered_delivery(
    bootstrap_servers: str, database_url: str, unique: Callable[[str], str]
) -> None:
    """Attempt 1 is rejected (INVALID_ARGUMENT: straight to the DLQ); ``courier dlq replay``
    sends it back through the retry topic; the replayed delivery links to the rejected one."""
    servicer = TracedServiceA(reject_attempts=frozenset({1}))
    replayed: list[int] = []

    def replay_dlq(_topic: str, consumer: str) -> None:
        config = broker_config(consumer, 1, _topic).consumers[consumer]
        wait_for(lambda: bool(read_topic(bootstrap_servers, f"{consumer}_dlq", timeout=1)),
                 30, "the DLQ record")  # fmt: skip
        replayed.append(replay(config, bootstrap_servers, RecordFilter()).replayed)

    run = _run(bootstrap_servers, database_url, unique, servicer, "log", 2, between=replay_dlq)

    assert replayed == [1]
    create, _send = _assert_trunk(run)
    first, second = named(run.spans, DELIVER)
    assert len({trace_id(s) for s in run.spans}) == 1
    assert parent_id(first) == parent_id(second) == span_id(create)
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["courier.outcome"] == "dead_letter"
    assert first.attributes["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT
    assert second.attributes["courier.outcome"] == "commit"
    assert [link.context.span_id for link in second.links] == [span_id(first)]
    dead = read_topic(bootstrap_servers, f"{run.consumer}_dlq", count=1, timeout=10)[0]
    assert dead.header("traceparent") == traceparent(create)
    assert dead.header(TRACE_LINKS_HEADER) == traceparent(first)
