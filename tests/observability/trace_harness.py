"""The whole path of one event in this process, with an in-memory span exporter.

Real Postgres (outbox table), a real relay (log-based or polling), real Kafka, the real broker
engine, and a consumer-kit gRPC server whose handler records the span it runs in.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf.empty_pb2 import Empty
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier.broker.config import BrokerConfig, parse_config
from courier.broker.kafka_clients import admin_client
from courier.broker.runner import Broker
from courier.broker.subscriptions import LoopSettings
from courier.broker.topics import ensure_topics
from courier.consumer import RejectEvent, RetryLater, event_metadata
from courier.observability.tracing import use_tracer_provider
from courier.relay.metrics import RelayMetrics
from courier.relay.poll import PollRelay, PollRelayConfig
from courier.relay.publisher import KafkaPublisher

SERVICE = "packages.v1.ServiceAEventsAPI"
FAST = LoopSettings(commit_interval=0.2, revoke_grace=2.0, shutdown_grace=3.0, idle_poll=0.05)


@contextlib.contextmanager
def in_memory_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An SDK provider exporting to memory, used by Courier's hooks for the block."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        yield provider, exporter
    finally:
        use_tracer_provider(None)
        provider.shutdown()


@contextlib.contextmanager
def poll_relay(database_url: str, bootstrap_servers: str, table: str) -> Iterator[PollRelay]:
    """The polling relay on a thread until the block ends."""
    config = PollRelayConfig(database_url=database_url, table=table, poll_interval=0.05)
    relay = PollRelay(config, KafkaPublisher(bootstrap_servers), RelayMetrics(mode="poll"))
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            relay.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="trace-poll-relay", daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(30)
    assert not errors, f"relay failed: {errors}"


@dataclass
class HandlerCall:
    """What the consumer's handler saw: the call's metadata and the span it ran in."""

    attempt: int
    traceparent: str | None
    span_context: trace.SpanContext


@dataclass
class TracedServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):  # type: ignore[misc]
    """EndpointA records each call; ``fail_attempts`` are answered with RetryLater (retried),
    ``reject_attempts`` with RejectEvent (dead-lettered)."""

    fail_attempts: frozenset[int] = frozenset()
    reject_attempts: frozenset[int] = frozenset()
    calls: list[HandlerCall] = field(default_factory=list)

    def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        meta = event_metadata(context)
        self.calls.append(
            HandlerCall(meta.attempt, meta.traceparent, trace.get_current_span().get_span_context())
        )
        if meta.attempt in self.fail_attempts:
            raise RetryLater("not yet")
        if meta.attempt in self.reject_attempts:
            raise RejectEvent("not for us")
        return Empty()

    def EndpointB(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        return Empty()


def broker_config(consumer: str, port: int, topic: str) -> BrokerConfig:
    """One consumer, one topic -> EndpointA (a bare name, resolved through reflection)."""
    entry = {
        "grpc-server-hostname": "127.0.0.1",
        "grpc-server-port": str(port),
        "grpc-service": SERVICE,
        "max-retry-attempts": 3,
        "batch-size": 10,
        "retry-topic": f"{consumer}_retry",
        "dlq-topic": f"{consumer}_dlq",
        "call-timeout": "2s",
        "in-memory-retry": {"attempts": 1, "base-backoff": "20ms", "max-backoff": "50ms"},
        "retry-delays": ["200ms"],
        "distribution": [{"topic": topic, "services": ["EndpointA"]}],
    }
    document = {"topics": {"partitions": 1}, "consumers": {consumer: entry}}
    return parse_config(yaml.safe_dump(document, sort_keys=False), "<test>")


@contextlib.contextmanager
def running_broker(config: BrokerConfig, bootstrap_servers: str) -> Iterator[Broker]:
    """The broker engine with its topics created; stopped on exit."""
    ensure_topics(admin_client(bootstrap_servers), config)
    broker = Broker(config, bootstrap_servers=bootstrap_servers, settings=FAST)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def named(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The finished spans called ``name``, oldest first."""
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def parent_id(span: ReadableSpan) -> int | None:
    """The span id of ``span``'s parent (None for a root)."""
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
