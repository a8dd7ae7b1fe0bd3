"""W3C trace context helpers of :mod:`courier.observability.tracing` (no stack needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from courier.observability import tracing

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


trace_ids = st.integers(min_value=1, max_value=2**128 - 1)
span_ids = st.integers(min_value=1, max_value=2**64 - 1)
flags = st.sampled_from([TraceFlags(0), TraceFlags(1)])


def _parent(context: object) -> SpanContext:
    return trace.get_current_span(context).get_span_context()  # type: ignore[arg-type]


def test_context_from_mapping_and_from_kafka_header_pairs() -> None:
    from_mapping = tracing.context_from_headers({"traceparent": TRACEPARENT})
    from_pairs = tracing.context_from_headers(
        [("ce_id", b"1"), ("traceparent", TRACEPARENT.encode()), ("tracestate", b"vendor=x")]
    )
    assert from_mapping is not None and from_pairs is not None
    assert _parent(from_mapping).trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert _parent(from_pairs).span_id == 0xB7AD6B7169203331
    assert _parent(from_pairs).trace_state == TraceState([("vendor", "x")])
    assert _parent(from_pairs).is_remote


def test_no_or_bad_traceparent_gives_no_context() -> None:
    assert tracing.context_from_headers({}) is None
    assert tracing.context_from_headers({"traceparent": "00-zz-yy-01"}) is None
    assert tracing.context_from_headers([("traceparent", b"\xff\xfe")]) is None
    assert tracing.context_from_headers([("traceparent", None)]) is None
    all_zero = "00-" + "0" * 32 + "-" + "0" * 16 + "-01"
    assert tracing.context_from_headers({"traceparent": all_zero}) is None


@given(trace_ids, span_ids, flags)
def test_trace_headers_round_trip(trace_id: int, span_id: int, trace_flags: TraceFlags) -> None:
    sent = SpanContext(trace_id, span_id, is_remote=False, trace_flags=trace_flags)
    headers = tracing.trace_headers(sent)
    assert headers["traceparent"] == f"00-{trace_id:032x}-{span_id:016x}-{int(trace_flags):02x}"
    received = tracing.context_from_headers(headers)
    assert received is not None
    got = _parent(received)
    assert (got.trace_id, got.span_id, got.trace_flags) == (trace_id, span_id, trace_flags)


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_any_header_value_parses_or_is_ignored(value: str | bytes) -> None:
    context = tracing.context_from_headers([("traceparent", value)])
    assert context is None or _parent(context).is_valid
    for link in tracing.links_from_header(value if isinstance(value, str) else None):
        assert link.context.is_valid


@given(st.lists(st.tuples(trace_ids, span_ids), max_size=4), st.lists(st.text(max_size=20)))
def test_links_header_round_trip(ids: list[tuple[int, int]], junk: list[str]) -> None:
    parents = [tracing.trace_headers(SpanContext(t, s, False))["traceparent"] for t, s in ids]
    value = tracing.format_links_header([*parents, None, ""])
    noisy = ",".join([value, *(j.replace(",", "") for j in junk)])
    links = tracing.links_from_header(noisy)
    unique = list(dict.fromkeys(ids))
    assert [(link.context.trace_id, link.context.span_id) for link in links][: len(unique)] == (
        unique
    )


def test_with_trace_context_replaces_traceparent_and_a_stale_tracestate() -> None:
    new = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    headers = tracing.with_trace_context(
        {"traceparent": TRACEPARENT, "tracestate": "old=1", "tenant": "acme"}, new
    )
    assert headers == {
        "traceparent": "00-00000000000000000000000000000001-0000000000000002-01",
        "tenant": "acme",
    }


def test_metadata_with_span_swaps_the_trace_context_only() -> None:
    metadata = (("ce-id", "1"), ("traceparent", TRACEPARENT), ("courier-attempt", "1"))
    assert tracing.metadata_with_span(metadata, None) == metadata
    span = TracerProvider().get_tracer("t").start_span("s")
    swapped = dict(tracing.metadata_with_span(metadata, span))
    assert swapped["traceparent"] == tracing.traceparent_of(span)
    assert swapped["ce-id"] == "1" and swapped["courier-attempt"] == "1"
    span.end()


def test_hooks_are_off_without_an_sdk_provider() -> None:
    assert not tracing.tracing_enabled()
    assert tracing.start_send_span("t", "1", "x.v1.E", {"traceparent": TRACEPARENT}) is None
    assert tracing.start_handler_span("/a.B/C", [("traceparent", TRACEPARENT)]) is None
    headers = {"traceparent": TRACEPARENT}
    with tracing.outbox_save_span("t", "1", "x.v1.E", None, headers) as stored:
        assert stored is headers
    provider = TracerProvider()
    tracing.use_tracer_provider(provider)
    try:
        assert tracing.tracing_enabled()
        # The relay never starts a trace of its own.
        assert tracing.start_send_span("t", "1", "x.v1.E", {}) is None
    finally:
        tracing.use_tracer_provider(None)
    assert not tracing.tracing_enabled()


def test_configure_tracing_does_nothing_unless_asked() -> None:
    assert tracing.configure_tracing("svc", environ={}) is False
    assert tracing.configure_tracing("svc", environ={"OTEL_TRACES_EXPORTER": "none"}) is False
    assert not tracing.tracing_enabled()
