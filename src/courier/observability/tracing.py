"""One trace per event: W3C trace context carried from the producer to the consumer's handler.

The spans Courier records (names and attributes follow OpenTelemetry's messaging and RPC
semantic conventions; see ``docs/tracing.md``)::

    <the producer's own span>
     └─ create <topic>            PRODUCER  build_event(...).save(): the outbox row is written
         ├─ send <topic>          PRODUCER  the relay publishes the row; ends when Kafka acks
         └─ deliver <Svc/Method>  CLIENT    the broker's delivery to one gRPC method
             └─ <Svc/Method>      SERVER    the consumer kit's handler

The ``create`` span's context is the event's *creation context*: it is stored in the outbox
row's ``headers`` (``traceparent``/``tracestate``), copied unchanged into the Kafka record by the
relay, kept in retry and DLQ records by the broker, and every delivery continues it. A delivery
span sends its own context to the consumer in gRPC metadata. A delivery from the retry topic
(or a DLQ replay) links to the delivery spans of the previous hop, whose traceparents the
broker writes into the ``courier-trace-links`` header.

Everything here is on the OpenTelemetry API: with no SDK configured every call returns at
once and records nothing. Configure the SDK the usual way (``opentelemetry-instrument``, or
``trace.set_tracer_provider(...)`` in your own process), or let a Courier process do it from
the environment with :func:`configure_tracing`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger("courier.tracing")

TRACER_NAME = "courier"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_CONTEXT_HEADERS = (TRACEPARENT, TRACESTATE)
TRACE_LINKS_HEADER = "courier-trace-links"
"""Retry/DLQ record header: comma-separated traceparents of the previous hop's delivery spans."""

_PROPAGATOR = TraceContextTextMapPropagator()
_override: trace.TracerProvider | None = None
_cached: tuple[trace.TracerProvider, trace.Tracer] | None = None


# -- provider -------------------------------------------------------------------------------


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Send Courier's spans to ``provider`` instead of the global one (None: the global again).

    For tests and for processes that keep several providers; most users set the global
    provider (``trace.set_tracer_provider``) and never call this.
    """
    global _override
    _override = provider


def _provider() -> trace.TracerProvider:
    return _override if _override is not None else trace.get_tracer_provider()


def tracing_enabled() -> bool:
    """True when a real (SDK) tracer provider is configured; False means every hook is a no-op."""
    return not isinstance(_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def tracer() -> trace.Tracer:
    """Courier's tracer (instrumentation scope ``courier``) from the current provider."""
    global _cached
    provider = _provider()
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer(TRACER_NAME, _version()))
    return _cached[1]


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("courier-events")
    except PackageNotFoundError:
        return None


# -- propagation ----------------------------------------------------------------------------


def text_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, str],
) -> dict[str, str]:
    """The trace headers (``traceparent``, ``tracestate``, ``courier-trace-links``) as text.

    Accepts a mapping or Kafka/gRPC style pairs (values bytes or str); undecodable values and
    other headers are left out; when a name repeats, the last value wins.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, raw in pairs:
        key = name.lower()
        if key not in (TRACEPARENT, TRACESTATE, TRACE_LINKS_HEADER) or raw is None:
            continue
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("ascii")
            except UnicodeDecodeError:
                continue
        found[key] = raw
    return found


def context_from_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, str],
) -> Context | None:
    """The OpenTelemetry context whose parent is the headers' ``traceparent``; None if absent
    or malformed.

    >>> tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    >>> ctx = context_from_headers({"traceparent": tp})
    >>> format(trace.get_current_span(ctx).get_span_context().trace_id, "032x")
    '0af7651916cd43dd8448eb211c80319c'
    >>> context_from_headers({"traceparent": "garbage"}) is None
    True
    """
    carrier = text_headers(headers)
    if TRACEPARENT not in carrier:
        return None
    extracted = _PROPAGATOR.extract({k: carrier[k] for k in TRACE_CONTEXT_HEADERS if k in carrier})
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def span_context_from_traceparent(value: str) -> SpanContext | None:
    """The (remote) span context a W3C ``traceparent`` names; None when it is not valid."""
    extracted = context_from_headers({TRACEPARENT: value.strip()})
    return None if extracted is None else trace.get_current_span(extracted).get_span_context()


def trace_headers(span_context: SpanContext) -> dict[str, str]:
    """``traceparent`` (and ``tracestate`` when not empty) for ``span_context``; empty if invalid.

    >>> sc = SpanContext(0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, is_remote=False,
    ...                  trace_flags=trace.TraceFlags(1))
    >>> trace_headers(sc)
    {'traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'}
    """
    if not span_context.is_valid:
        return {}
    # What TraceContextTextMapPropagator.inject writes, without building a Context (hot path).
    carrier = {
        TRACEPARENT: f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags) & 0xFF:02x}"
    }
    if span_context.trace_state:
        carrier[TRACESTATE] = span_context.trace_state.to_header()
    return carrier


def with_trace_context(headers: Mapping[str, str], span_context: SpanContext) -> dict[str, str]:
    """``headers`` with ``traceparent``/``tracestate`` replaced by ``span_context``'s."""
    updated = {k: v for k, v in headers.items() if k != TRACESTATE}
    updated.update(trace_headers(span_context))
    return updated


def current_trace_headers() -> dict[str, str]:
    """``traceparent``/``tracestate`` of the active span (empty when there is none)."""
    return trace_headers(trace.get_current_span().get_span_context())


def links_from_header(value: str | None) -> list[Link]:
    """Links to the span contexts of a ``courier-trace-links`` header (bad entries skipped)."""
    links = []
    for part in (value or "").split(","):
        span_context = span_context_from_traceparent(part) if part.strip() else None
        if span_context is not None:
            links.append(Link(span_context))
    return links


def format_links_header(traceparents: Iterable[str | None]) -> str:
    """The ``courier-trace-links`` value for these traceparents (empty ones dropped, no repeats)."""
    return ",".join(dict.fromkeys(t for t in traceparents if t))


# -- spans ----------------------------------------------------------------------------------


def _messaging(operation: str, topic: str, event_id: str, event_type: str) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.destination.name": topic,
        "messaging.message.id": event_id,
        "cloudevents.event_type": event_type,
    }


@contextlib.contextmanager
def outbox_save_span(
    topic: str, event_id: str, event_type: str, key: str | None, headers: Mapping[str, str]
) -> Iterator[Mapping[str, str]]:
    """The ``create <topic>`` span around an outbox write; yields the headers to store.

    Its parent is the ``traceparent`` already in ``headers`` (captured by ``build_event`` or
    given by the caller), else the active span; with no parent it starts a trace. The headers
    yielded carry the new span's context (unchanged when tracing is off).
    """
    if not tracing_enabled():
        yield headers
        return
    attributes = _messaging("create", topic, event_id, event_type)
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    span = tracer().start_span(
        f"create {topic}",
        context=context_from_headers(headers),
        kind=SpanKind.PRODUCER,
        attributes=attributes,
    )
    with trace.use_span(span, end_on_exit=True):
        yield with_trace_context(headers, span.get_span_context())


def start_send_span(
    topic: str, event_id: str, event_type: str, headers: Mapping[str, str]
) -> Span | None:
    """The relay's ``send <topic>`` span, child of the event's stored context.

    None when tracing is off or the event carries no trace context (the relay never starts
    traces of its own). End it with :func:`end_send_span`.
    """
    if not tracing_enabled():
        return None
    parent = context_from_headers(headers)
    if parent is None:
        return None
    return tracer().start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_messaging("send", topic, event_id, event_type),
    )


def end_send_span(span: Span, error: Any, partition: int | None, offset: int | None) -> None:
    """End a ``send`` span once Kafka answered: ``error`` (a KafkaError) or where it landed."""
    if error is not None:
        name = error.name() if hasattr(error, "name") else type(error).__name__
        span.set_attribute("error.type", str(name))
        span.set_status(Status(StatusCode.ERROR, str(error)))
    else:
        if partition is not None:
            span.set_attribute("messaging.destination.partition.id", str(partition))
        if offset is not None and offset >= 0:
            span.set_attribute("messaging.kafka.offset", offset)
    span.end()


def start_delivery_span(
    *,
    consumer: str,
    method: str,
    server_address: str,
    topic: str,
    event_id: str,
    event_type: str,
    attempt: int,
    headers: Mapping[str, str],
) -> Span | None:
    """The broker's ``deliver <Service/Method>`` span (CLIENT) for one event and one method.

    Child of the event's ``traceparent`` (a new trace when it has none); links to the spans
    in ``courier-trace-links`` (the previous hop's deliveries). None when tracing is off.
    """
    if not tracing_enabled():
        return None
    service, _, name = method.lstrip("/").partition("/")
    attributes = _messaging("process", topic, event_id, event_type)
    attributes.update(
        {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "server.address": server_address,
            "courier.consumer": consumer,
            "courier.attempt": attempt,
        }
    )
    return tracer().start_span(
        f"deliver {method.lstrip('/')}",
        context=context_from_headers(headers) or Context(),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        links=links_from_header(headers.get(TRACE_LINKS_HEADER)),
    )


def record_call(span: Span | None, status: str, status_code: int, probe: bool) -> None:
    """Note a failed call or a breaker probe of a delivery as a ``call`` span event.

    A delivery that succeeds at its first call gets no event: its status is on the span.
    """
    if span is not None and (probe or status_code != 0):
        span.add_event(
            "call", {"rpc.grpc.status_code": status_code, "rpc.grpc.status": status, "probe": probe}
        )


def end_delivery_span(
    span: Span, *, status: str, status_code: int, outcome: str, details: str, calls: int
) -> None:
    """End a delivery span: the final gRPC status, the broker's decision, and the call count.

    ``outcome`` is ``commit``, ``retry`` or ``dead_letter``; anything but ``commit`` is an
    ERROR status (the event did not reach the consumer this time).
    """
    span.set_attribute("rpc.grpc.status_code", status_code)
    span.set_attribute("courier.outcome", outcome)
    span.set_attribute("courier.calls", calls)
    if outcome != "commit":
        span.set_status(Status(StatusCode.ERROR, f"{status}: {details}" if details else status))
    span.end()


def traceparent_of(span: Span | None) -> str | None:
    """The W3C traceparent of ``span``, or None."""
    if span is None:
        return None
    return trace_headers(span.get_span_context()).get(TRACEPARENT)


def metadata_with_span(
    metadata: Sequence[tuple[str, str]], span: Span | None
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata whose ``traceparent``/``tracestate`` are ``span``'s (unchanged if None)."""
    if span is None or not span.get_span_context().is_valid:
        return tuple(metadata)
    kept = [(k, v) for k, v in metadata if k not in TRACE_CONTEXT_HEADERS]
    return (*kept, *trace_headers(span.get_span_context()).items())


class HandlerSpan:
    """The consumer kit's SERVER span around one handler call; active while it runs.

    Use :func:`start_handler_span`, then :meth:`failed` for an exception and :meth:`end`.
    """

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def failed(self, exc: BaseException) -> None:
        """Record the handler's exception on the span."""
        self.span.record_exception(exc)

    def end(self, status: str, status_code: int, details: str) -> None:
        """Record the call's status (not OK/ALREADY_EXISTS = ERROR), deactivate and end it."""
        self.span.set_attribute("rpc.grpc.status_code", status_code)
        if status not in ("OK", "ALREADY_EXISTS"):
            self.span.set_status(
                Status(StatusCode.ERROR, f"{status}: {details}" if details else status)
            )
        otel_context.detach(self._token)
        self.span.end()


def start_handler_span(method: str, metadata: Iterable[Any] | None) -> HandlerSpan | None:
    """A SERVER span ``<Service/Method>`` continuing the call's ``traceparent``; None when off.

    ``metadata`` is the call's invocation metadata (pairs or ``_Metadatum``).
    """
    if not tracing_enabled():
        return None
    pairs = [(str(item[0]), item[1]) for item in metadata or ()]
    values = {k.lower(): v for k, v in pairs if isinstance(v, str)}
    service, _, name = method.lstrip("/").partition("/")
    attributes: dict[str, Any] = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    if values.get("ce-id"):
        attributes["messaging.message.id"] = values["ce-id"]
    if values.get("ce-type"):
        attributes["cloudevents.event_type"] = values["ce-type"]
    if values.get("courier-attempt", "").isdigit():
        attributes["courier.attempt"] = int(values["courier-attempt"])
    span = tracer().start_span(
        method.lstrip("/"),
        context=context_from_headers(pairs) or Context(),
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    return HandlerSpan(span)


# -- configuration --------------------------------------------------------------------------

ENV_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
ENV_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install an SDK tracer provider from the standard ``OTEL_*`` variables, if asked to.

    Does nothing (returns False) when a provider is already configured (for example by
    ``opentelemetry-instrument``), or when neither ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` nor ``OTEL_TRACES_EXPORTER`` asks for an exporter.
    ``OTEL_TRACES_EXPORTER`` may be ``otlp`` (the default when an endpoint is set; needs the
    ``opentelemetry-exporter-otlp-proto-http`` package), ``console`` or ``none``. The service
    name is ``OTEL_SERVICE_NAME`` when set, else ``service_name``.
    """
    env = os.environ if environ is None else environ
    if tracing_enabled():
        return False
    exporter_name = env.get(ENV_TRACES_EXPORTER, "").strip().lower()
    if not exporter_name:
        if not any(env.get(name) for name in ENV_OTLP_ENDPOINTS):
            return False
        exporter_name = "otlp"
    if exporter_name == "none":
        return False
    exporter = _exporter(exporter_name)
    if exporter is None:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create() reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES from os.environ.
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info("tracing configured", extra={"exporter": exporter_name})
    return True


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            logger.warning(
                "OTLP endpoint set but opentelemetry-exporter-otlp-proto-http is not installed: "
                "no spans are exported"
            )
            return None
        return OTLPSpanExporter()
    logger.warning("unsupported OTEL_TRACES_EXPORTER", extra={"exporter": name})
    return None
