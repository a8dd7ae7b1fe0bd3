"""Broker figures, measured side by side in one run on this machine.

    .venv/bin/python benchmarks/broker_throughput.py [--events 20000] [--seconds 10]

1. broker throughput: ``courier broker run`` (a subprocess, as deployed) delivering a topic
   pre-filled with ``--events`` events to one Python gRPC consumer (a grpc.aio server in its
   own process), one call per event; events/s from the first to the last call received;
2. the raw ceiling, measured the same way without Kafka: a bare grpc.aio client making the
   same calls (same payload and metadata) at the same concurrency (partitions x batch-size)
   against the same server; and the ratio broker / raw;
3. end-to-end latency, event time (``ce_time``, stamped when produced) to the call's arrival
   at the consumer, p50/p99, at a steady rate (a third of the measured throughput) for
   ``--seconds``.

Needs Kafka from the dev stack (``courier dev up``). Writes
benchmarks/results/broker_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import yaml
from confluent_kafka import Producer

from courier.broker.config import parse_config
from courier.broker.delivery import delivery_request
from courier.broker.kafka_clients import admin_client
from courier.broker.topics import ensure_topics
from courier.devstack.config import StackConfig
from courier.events import EventEnvelope, uuid7

RESULTS = Path(__file__).parent / "results" / "broker_throughput.json"
SERVICE = "bench.v1.Consumer"
HANDLE = f"/{SERVICE}/Handle"
STATS = f"/{SERVICE}/Stats"
PARTITIONS = 3
BATCH_SIZE = 100
PAYLOAD = bytes(range(256)) * 1  # a 256-byte protobuf-sized payload


# -- the consumer (its own process) --------------------------------------------------------


def serve(port: int) -> None:
    """A grpc.aio server: Handle counts calls and their latency from ce-time; Stats reports."""
    state: dict[str, Any] = {"count": {}, "first": {}, "last": {}, "latency": {}}

    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        now = time.time()
        meta = dict(context.invocation_metadata() or ())
        kind = str(meta.get("ce-type", "?"))
        state["count"][kind] = state["count"].get(kind, 0) + 1
        state["first"].setdefault(kind, now)
        state["last"][kind] = now
        if kind == "bench.Steady":
            sent = datetime.fromisoformat(str(meta["ce-time"]).replace("Z", "+00:00"))
            state["latency"].setdefault(kind, []).append(now - sent.timestamp())
        return b""

    async def stats(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if request == b"reset":
            for value in state.values():
                value.clear()
        return json.dumps(state).encode()

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        handlers = {
            "Handle": grpc.unary_unary_rpc_method_handler(handle),
            "Stats": grpc.unary_unary_rpc_method_handler(stats),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(1)

    asyncio.run(main())


def _stats(port: int, reset: bool = False) -> dict[str, Any]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = channel.unary_unary(STATS)(b"reset" if reset else b"", timeout=10)
    result: dict[str, Any] = json.loads(answer)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- measurements ----------------------------------------------------------------------------


def _event(topic: str, kind: str) -> EventEnvelope:
    return EventEnvelope(
        id=str(uuid7()), type=kind, source="bench", time=datetime.now(UTC), topic=topic,
        payload=PAYLOAD, key=secrets.token_hex(4),
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )  # fmt: skip


def raw_ceiling(port: int, calls: int, concurrency: int) -> float:
    """Calls/s of a bare grpc.aio client, ``concurrency`` calls in flight, same requests."""
    request = delivery_request(_event("raw", "bench.Raw"), attempt=1)

    async def run() -> float:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = channel.unary_unary(HANDLE)
            await stub(request.payload, metadata=request.metadata, timeout=10)
            remaining = calls

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await stub(request.payload, metadata=request.metadata, timeout=10)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return calls / (time.perf_counter() - started)

    return asyncio.run(run())


def _produce(servers: str, events: list[EventEnvelope], rate: float | None = None) -> None:
    producer = Producer(
        {"bootstrap.servers": servers, "acks": "all", "linger.ms": 1 if rate else 20}
    )
    started = time.perf_counter()
    for index, event in enumerate(events):
        if rate:
            wait = started + index / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            event = _event(event.topic, event.type)  # stamp ce_time when it is sent
        while True:
            try:
                producer.produce(event.topic, value=event.payload, key=event.kafka_key(),
                                 headers=event.kafka_headers())  # fmt: skip
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def _wait_for(port: int, kind: str, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = _stats(port)
        if stats["count"].get(kind, 0) >= count:
            return stats
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {stats['count'].get(kind, 0)} of {count} {kind} calls")
        time.sleep(0.2)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    servers = StackConfig.from_env().bootstrap_servers
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    broker: subprocess.Popen[bytes] | None = None
    concurrency = PARTITIONS * BATCH_SIZE
    try:
        time.sleep(1.0)
        _stats(port)
        raw = raw_ceiling(port, args.events, concurrency)
        print(f"raw grpc.aio ceiling: {raw:,.0f} calls/s ({concurrency} in flight)")

        suffix = secrets.token_hex(3)
        bulk, steady = f"bench_bulk_{suffix}", f"bench_steady_{suffix}"
        name = f"bench-{suffix}"
        document = {
            "topics": {"partitions": PARTITIONS},
            "consumers": {
                name: {
                    "grpc-server-hostname": "127.0.0.1",
                    "grpc-server-port": port,
                    "max-retry-attempts": 3,
                    "batch-size": BATCH_SIZE,
                    "retry-topic": f"{name}_retry",
                    "dlq-topic": f"{name}_dlq",
                    "distribution": [
                        {"topic": bulk, "services": [f"{SERVICE}/Handle"]},
                        {"topic": steady, "services": [f"{SERVICE}/Handle"]},
                    ],
                }
            },
        }
        text = yaml.safe_dump(document, sort_keys=False)
        ensure_topics(admin_client(servers), parse_config(text, "<bench>"))
        _produce(servers, [_event(bulk, "bench.Bulk") for _ in range(args.events)])
        _stats(port, reset=True)

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
            config_file.write(text)
        log = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the subprocess
        broker = subprocess.Popen(
            [sys.executable, "-m", "courier", "broker", "run", "--config", config_file.name,
             "--bootstrap-servers", servers],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        stats = _wait_for(port, "bench.Bulk", args.events, 300)
        span = stats["last"]["bench.Bulk"] - stats["first"]["bench.Bulk"]
        through = (args.events - 1) / span if span > 0 else float("nan")
        print(f"broker: {through:,.0f} events/s ({args.events:,} events in {span:.2f}s)")
        print(f"ratio broker / raw: {through / raw:.2f}")

        rate = max(50.0, round(through / 3, -1))
        count = int(rate * args.seconds)
        _produce(servers, [_event(steady, "bench.Steady") for _ in range(count)], rate=rate)
        stats = _wait_for(port, "bench.Steady", count, 120)
        latency = stats["latency"]["bench.Steady"]
        p50, p99 = _percentile(latency, 0.50), _percentile(latency, 0.99)
        print(f"end-to-end at {rate:,.0f} events/s for {args.seconds:g}s: "
              f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"mean {statistics.fmean(latency) * 1000:.1f} ms")  # fmt: skip

        broker.send_signal(signal.SIGTERM)
        broker_exit = broker.wait(60)
        result = {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "grpcio": grpc.__version__,
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            },
            "setup": {
                "events": args.events,
                "partitions": PARTITIONS,
                "batch_size": BATCH_SIZE,
                "in_flight": concurrency,
                "payload_bytes": len(PAYLOAD),
                "consumer": "grpc.aio server, one Python process",
            },
            "raw_grpc_aio_calls_per_s": round(raw),
            "broker_events_per_s": round(through),
            "ratio_broker_to_raw": round(through / raw, 3),
            "e2e_rate_events_per_s": rate,
            "e2e_seconds": args.seconds,
            "e2e_events": count,
            "e2e_p50_ms": round(p50 * 1000, 2),
            "e2e_p99_ms": round(p99 * 1000, 2),
            "broker_exit_code_after_sigterm": broker_exit,
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    finally:
        if broker is not None and broker.poll() is None:
            broker.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    main()
