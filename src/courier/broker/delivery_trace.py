"""The broker's side of one trace per event: a delivery span per event and method.

:func:`traced_delivery` wraps :meth:`ConsumerDeliverer.deliver_one
<courier.broker.delivery.ConsumerDeliverer.deliver_one>`: the span is a child of the event's
``traceparent``, links to the previous hop's delivery spans (``courier-trace-links``), is the
parent the consumer sees in the call's ``traceparent`` metadata, and ends with the gRPC status
and the broker's decision. The outcome carries the span's traceparent so that a retry or DLQ
record can name it (:func:`with_trace_links`), and the next delivery links back to it.

With tracing off (no SDK tracer provider) nothing changes: same request, same metadata.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span

from courier.observability import tracing

if TYPE_CHECKING:
    from courier.broker.config import ConsumerConfig
    from courier.broker.delivery import DeliveryOutcome, DeliveryRequest


class DeliveryTrace:
    """The delivery span of one event to one method (``span`` is None when tracing is off)."""

    def __init__(self, request: DeliveryRequest, span: Span | None = None) -> None:
        self.span = span
        self.request = request
        if span is not None:
            self.request = dataclasses.replace(
                request, metadata=tracing.metadata_with_span(request.metadata, span)
            )

    def call(self, code: grpc.StatusCode, probe: bool) -> None:
        """Note one gRPC call's status on the span."""
        if self.span is not None:
            tracing.record_call(self.span, code.name, code.value[0], probe)

    def finish(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        """End the span with ``outcome``; returns it carrying the span's traceparent."""
        if self.span is None:
            return outcome
        tracing.end_delivery_span(
            self.span,
            status=outcome.status,
            status_code=outcome.code.value[0],
            outcome=outcome.action.value,
            details=outcome.details,
            calls=outcome.calls,
        )
        return dataclasses.replace(outcome, traceparent=tracing.traceparent_of(self.span))


@contextlib.contextmanager
def traced_delivery(
    consumer: ConsumerConfig, method: str, request: DeliveryRequest
) -> Iterator[DeliveryTrace]:
    """A :class:`DeliveryTrace` whose span is active inside the block.

    A block left by an exception (cancellation on revoke or stop) ends the span as an error.
    """
    if not tracing.tracing_enabled():
        yield DeliveryTrace(request)
        return
    headers = dict(request.metadata)
    if request.trace_links:
        headers[tracing.TRACE_LINKS_HEADER] = request.trace_links
    span = tracing.start_delivery_span(
        consumer=consumer.name,
        method=method,
        server_address=consumer.target,
        topic=request.topic,
        event_id=request.event_id,
        event_type=request.event_type,
        attempt=request.attempt,
        headers=headers,
    )
    if span is None:
        yield DeliveryTrace(request)
        return
    traced = DeliveryTrace(request, span)
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        try:
            yield traced
        except BaseException as exc:
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"delivery abandoned: {exc!r}"))
            span.end()
            raise


def with_trace_links(
    headers: list[tuple[str, bytes | None]], outcomes: Sequence[DeliveryOutcome]
) -> list[tuple[str, bytes | None]]:
    """Retry/DLQ record headers naming the delivery spans of ``outcomes`` (the hop that failed).

    A stale ``courier-trace-links`` (from the hop before) is replaced; without traced outcomes
    none is written.
    """
    kept = [(name, value) for name, value in headers if name != tracing.TRACE_LINKS_HEADER]
    value = tracing.format_links_header(o.traceparent for o in outcomes)
    if value:
        kept.append((tracing.TRACE_LINKS_HEADER, value.encode("ascii")))
    return kept
