"""What the tracing hooks cost per event, with tracing off and on, measured side by side.

    .venv/bin/python benchmarks/tracing_overhead.py [--events 20000]

For each stage's hook (outbox ``create`` span, relay ``send`` span, broker delivery span with
its metadata swap, consumer SERVER span) the time per event:

- off: no SDK tracer provider (the default): the OpenTelemetry no-op path;
- on: an SDK ``TracerProvider`` recording every span (no exporter: export cost is the
  exporter's, not Courier's).

Each is compared with building the event's Kafka headers and gRPC metadata
(``kafka_headers()`` + ``delivery_request()``), work every event already does, and with the
broker's per-event time from ``results/broker_throughput.json`` when that file exists.
No stack needed. Writes benchmarks/results/tracing_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from courier.broker.config import parse_config
from courier.broker.delivery import DeliveryOutcome, delivery_request
from courier.broker.delivery_trace import traced_delivery
from courier.events import EventEnvelope, uuid7
from courier.observability import tracing

RESULTS = Path(__file__).parent / "results" / "tracing_overhead.json"
BROKER_RESULTS = Path(__file__).parent / "results" / "broker_throughput.json"
METHOD = "/bench.v1.Consumer/Handle"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

CONFIG = """
consumers:
  bench:
    grpc-server-hostname: 127.0.0.1
    grpc-server-port: 1
    batch-size: 10
    max-retry-attempts: 3
    retry-topic: bench_retry
    dlq-topic: bench_dlq
    distribution:
      - topic: bench
        services: ["bench.v1.Consumer/Handle"]
"""


def _event() -> EventEnvelope:
    return EventEnvelope(
        id=str(uuid7()),
        type="bench.v1.Event",
        source="bench",
        time=datetime.now(UTC),
        topic="bench",
        key="k",
        payload=b"x" * 256,
        headers={"traceparent": TRACEPARENT},
    )


def _per_event_us(work: Callable[[], object], events: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        started = time.perf_counter()
        for _ in range(events):
            work()
        best = min(best, time.perf_counter() - started)
    return best / events * 1e6


def _hooks(events: int) -> dict[str, float]:
    consumer = parse_config(CONFIG, "<bench>").consumers["bench"]
    envelope = _event()
    request = delivery_request(envelope, 1)
    outcome = DeliveryOutcome(METHOD, grpc.StatusCode.OK, "", 1)
    metadata = request.metadata

    def outbox() -> None:
        with tracing.outbox_save_span("bench", envelope.id, envelope.type, "k", envelope.headers):
            pass

    def relay() -> None:
        span = tracing.start_send_span("bench", envelope.id, envelope.type, envelope.headers)
        if span is not None:
            tracing.end_send_span(span, None, 0, 1)

    def broker() -> None:
        with traced_delivery(consumer, METHOD, request) as traced:
            traced.call(grpc.StatusCode.OK, False)
            traced.finish(outcome)

    def handler() -> None:
        span = tracing.start_handler_span(METHOD, metadata)
        if span is not None:
            span.end("OK", 0, "")

    return {
        "outbox_create_us": _per_event_us(outbox, events),
        "relay_send_us": _per_event_us(relay, events),
        "broker_delivery_us": _per_event_us(broker, events),
        "consumer_server_us": _per_event_us(handler, events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    envelope = _event()
    baseline = _per_event_us(lambda: (envelope.kafka_headers(), delivery_request(envelope, 1)),
                             args.events)  # fmt: skip
    off = _hooks(args.events)
    tracing.use_tracer_provider(TracerProvider())
    try:
        on = _hooks(args.events)
    finally:
        tracing.use_tracer_provider(None)

    broker_us = None
    if BROKER_RESULTS.exists():
        rate = json.loads(BROKER_RESULTS.read_text()).get("broker_events_per_s")
        broker_us = 1e6 / rate if rate else None
    result: dict[str, object] = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "events": args.events,
        "baseline_headers_and_metadata_us": round(baseline, 2),
        "off": {k: round(v, 2) for k, v in off.items()},
        "on": {k: round(v, 2) for k, v in on.items()},
        "off_total_to_baseline": round(sum(off.values()) / baseline, 2),
        "on_total_to_baseline": round(sum(on.values()) / baseline, 2),
    }
    if broker_us is not None:
        result["broker_us_per_event"] = round(broker_us, 1)
        result["off_broker_hook_share_of_broker_event"] = round(
            off["broker_delivery_us"] / broker_us, 4
        )
        result["on_broker_hook_share_of_broker_event"] = round(
            on["broker_delivery_us"] / broker_us, 4
        )
    print(f"baseline (Kafka headers + gRPC metadata): {baseline:.2f} us/event")
    for name in off:
        print(f"{name:>22}: off {off[name]:6.2f} us   on {on[name]:6.2f} us")
    if broker_us is not None:
        print(
            f"broker hook vs the broker's {broker_us:.0f} us/event: "
            f"off {off['broker_delivery_us'] / broker_us:.2%}, "
            f"on {on['broker_delivery_us'] / broker_us:.2%}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
