"""One event to one gRPC method (DESIGN.md contract 4), with in-memory retries and the breaker.

The call is unary, ``/<package.Service>/<Method>``, and its request is the event's protobuf
bytes unchanged (identity serializers: the broker never decodes a payload). Metadata::

    ce-id  ce-type  ce-source  ce-time  courier-attempt  [traceparent  tracestate]

:class:`ConsumerDeliverer` owns one ``grpc.aio`` channel per consumer service. For one
method it calls, asks :func:`~courier.broker.status_actions.action_for` what the status
means, and on RETRY waits ``RetryPolicy.backoff`` and calls again, up to ``attempts`` more
times, before returning the last outcome for the consumer loop to hand off. Every call goes
through the consumer's :class:`~courier.broker.breaker.CircuitBreaker` first; calls made
while it is not closed (probes) do not use up the event's retries, and an event whose retries
are spent waits for the breaker to close before it is handed off -- so an outage pauses
events instead of pushing them into the retry topic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import ConsumerConfig, TlsSettings
from courier.broker.delivery_log import log_in_memory_retry
from courier.broker.delivery_trace import DeliveryTrace, traced_delivery
from courier.broker.metrics import BrokerMetrics
from courier.broker.status_actions import Action, action_for
from courier.events import EventEnvelope, format_time
from courier.observability.tracing import TRACE_LINKS_HEADER

# Longest sleep while waiting for the breaker: a close caused by another call is seen soon.
_BREAKER_POLL = 0.1
_MAX_DETAILS = 1000

CHANNEL_OPTIONS: tuple[tuple[str, object], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Reconnect quickly after the consumer restarts (the default backoff reaches 120 s).
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.initial_reconnect_backoff_ms", 200),
)


@dataclass(frozen=True)
class DeliveryRequest:
    """What is sent for one event: its payload and the call metadata (attempt included)."""

    event_id: str
    event_type: str
    payload: bytes
    metadata: tuple[tuple[str, str], ...]
    attempt: int
    topic: str = ""
    """The topic the event was first published to (for the delivery span)."""
    trace_links: str | None = None
    """``courier-trace-links`` of a retry record: the previous hop's delivery spans."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """How delivering one event to one method ended, after the in-memory retries."""

    method: str
    """The full path, ``/package.Service/Method``."""
    code: grpc.StatusCode
    details: str
    calls: int
    """gRPC calls made for this outcome (1 + in-memory retries + probes)."""
    traceparent: str | None = None
    """The delivery span's W3C traceparent, when tracing is on."""

    @property
    def action(self) -> Action:
        """COMMIT, RETRY or DEAD_LETTER (the contract-4 table)."""
        return action_for(self.code)

    @property
    def status(self) -> str:
        """The status name, as written to ``courier-last-status``."""
        return self.code.name


def call_metadata(envelope: EventEnvelope, attempt: int) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata for delivering ``envelope`` (``attempt`` 1 = the first delivery).

    >>> from datetime import UTC, datetime
    >>> e = EventEnvelope(id="1", type="t.v1.E", source="svc", topic="t", payload=b"",
    ...                   time=datetime(2026, 1, 1, tzinfo=UTC), headers={"traceparent": "00-a"})
    >>> call_metadata(e, 1)[-2:]
    (('courier-attempt', '1'), ('traceparent', '00-a'))
    """
    pairs = [
        ("ce-id", envelope.id),
        ("ce-type", envelope.type),
        ("ce-source", envelope.source),
        ("ce-time", format_time(envelope.time)),
        ("courier-attempt", str(attempt)),
    ]
    for name in ("traceparent", "tracestate"):
        value = envelope.headers.get(name)
        if value:
            pairs.append((name, value))
    return tuple(pairs)


def delivery_request(envelope: EventEnvelope, attempt: int) -> DeliveryRequest:
    """The request for delivering ``envelope`` as delivery number ``attempt``."""
    return DeliveryRequest(
        event_id=envelope.id,
        event_type=envelope.type,
        payload=envelope.payload,
        metadata=call_metadata(envelope, attempt),
        attempt=attempt,
        topic=envelope.topic,
        trace_links=envelope.headers.get(TRACE_LINKS_HEADER),
    )


def channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    """gRPC channel credentials from the consumer's ``tls`` settings (files read now)."""

    def read(path: Path | None) -> bytes | None:
        return None if path is None else path.read_bytes()

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca_file),
        private_key=read(tls.key_file),
        certificate_chain=read(tls.cert_file),
    )


class ConsumerDeliverer:
    """Delivers events to one consumer service's gRPC methods; lives on one asyncio loop.

    Create it anywhere, then ``await open()`` on the loop that will make the calls.
    """

    def __init__(
        self,
        consumer: ConsumerConfig,
        breaker: CircuitBreaker,
        metrics: BrokerMetrics | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.consumer = consumer
        self.breaker = breaker
        self.metrics = metrics
        self._rng = rng or random.Random()
        self._channel: grpc.aio.Channel | None = None
        self._callables: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}

    async def open(self) -> None:
        """Create the channel (on the running loop)."""
        options: list[tuple[str, object]] = list(CHANNEL_OPTIONS)
        tls = self.consumer.tls
        if tls is None:
            self._channel = grpc.aio.insecure_channel(self.consumer.target, options=options)
        else:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            self._channel = grpc.aio.secure_channel(
                self.consumer.target, channel_credentials(tls), options=options
            )

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None

    async def deliver(
        self, methods: Sequence[str], request: DeliveryRequest
    ) -> list[DeliveryOutcome]:
        """Deliver one event to each method concurrently; one outcome per method, in order."""
        if len(methods) == 1:
            return [await self.deliver_one(methods[0], request)]
        return list(await asyncio.gather(*(self.deliver_one(m, request) for m in methods)))

    async def deliver_one(self, method: str, request: DeliveryRequest) -> DeliveryOutcome:
        """Call ``method`` until it answers a non-retryable status or retries are spent.

        Inside a delivery span when tracing is on (:mod:`courier.broker.delivery_trace`).
        """
        with traced_delivery(self.consumer, method, request) as traced:
            return traced.finish(await self._deliver_traced(method, traced))

    async def _deliver_traced(self, method: str, traced: DeliveryTrace) -> DeliveryOutcome:
        request = traced.request
        policy = self.consumer.retry
        failures = 0  # retryable failures of calls made while the breaker was closed
        calls = 0
        while True:
            probe = await self._admitted()
            try:
                code, details = await self._call(method, request)
            except asyncio.CancelledError:
                if probe:
                    self.breaker.release_probe()
                raise
            calls += 1
            traced.call(code, probe)
            retry = action_for(code) is Action.RETRY
            if retry:
                self.breaker.record_failure(probe=probe)
            else:
                self.breaker.record_success(probe=probe)
            if not retry:
                return DeliveryOutcome(method, code, details, calls)
            if not probe:
                failures += 1
            if failures > policy.attempts and self.breaker.state is BreakerState.CLOSED:
                return DeliveryOutcome(method, code, details, calls)
            if self.metrics is not None:
                self.metrics.retries.labels(self.consumer.name, "in_memory").inc()
            log_in_memory_retry(self.consumer.name, method, request, code, details, calls)
            await asyncio.sleep(policy.backoff(max(failures, 1), self._rng))

    async def _admitted(self) -> bool:
        """Wait until the breaker lets a call out; True if it is a probe."""
        while True:
            admission = self.breaker.admit()
            if admission.allowed:
                return admission.probe
            await asyncio.sleep(min(max(admission.wait, 0.005), _BREAKER_POLL))

    async def _call(self, method: str, request: DeliveryRequest) -> tuple[grpc.StatusCode, str]:
        if self._channel is None:
            raise RuntimeError("ConsumerDeliverer.open() was not awaited")
        stub = self._callables.get(method)
        if stub is None:
            # No serializers: the request goes out as the bytes it is, the reply stays bytes.
            stub = self._channel.unary_unary(
                method, request_serializer=None, response_deserializer=None
            )
            self._callables[method] = stub
        started = time.perf_counter()
        try:
            await stub(
                request.payload, timeout=self.consumer.call_timeout, metadata=request.metadata
            )
            code, details = grpc.StatusCode.OK, ""
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
        except (ValueError, TypeError, RuntimeError) as exc:
            # Not an answer from the consumer (bad metadata value, channel closing): UNKNOWN is
            # retried, so the event still ends in the retry topic or DLQ, never dropped.
            code, details = grpc.StatusCode.UNKNOWN, f"broker could not make the call: {exc}"
        if self.metrics is not None:
            name = self.consumer.name
            self.metrics.delivery_seconds.labels(name, method).observe(
                time.perf_counter() - started
            )
            self.metrics.deliveries.labels(name, method, code.name.lower()).inc()
        return code, details[:_MAX_DETAILS]
