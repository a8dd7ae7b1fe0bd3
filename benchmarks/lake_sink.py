"""Lake sink throughput next to a bare confluent-kafka consume loop, in one run.

    .venv/bin/python benchmarks/lake_sink.py [--events 100000] [--roll-seconds 1]

One topic (3 partitions) is filled with ``--events`` ``packages.v1.PackageDelivered``
events (CloudEvents headers, a ~120-byte payload). Then, each with a fresh consumer group:

1. bare loop: ``Consumer.consume(1000)`` in a loop, touching each record's value and
   headers, until every event is read; events/s from the partitions' assignment to the last
   record;
2. lake sink: :class:`courier.lake.sink.LakeSink` (the code behind ``courier lake sink``,
   run in this process) with its defaults except ``--roll-seconds``; events/s from the
   assignment to the moment every offset is committed, i.e. every event is in a durable
   (fsynced, renamed) Parquet file with its JSON decoded;
3. the same sink with payload decoding off (no message types known), to show what the
   protobuf -> JSON step costs.

The ratio sink / bare is the figure to watch. Needs Kafka from the dev stack. Writes
benchmarks/results/lake_sink.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import secrets
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Address, Package

from courier.devstack.config import StackConfig
from courier.events import EventEnvelope, uuid7
from courier.lake.buffers import RollPolicy
from courier.lake.decode import PayloadDecoder
from courier.lake.files import list_lake_files
from courier.lake.metrics import LakeMetrics
from courier.lake.sink import LakeSink, SinkConfig
from courier.lake.topics import TopicSelection
from courier.relay.testing import end_offsets

RESULTS = Path(__file__).parent / "results" / "lake_sink.json"
PARTITIONS = 3


def fill_topic(servers: str, topic: str, events: int) -> int:
    """Create ``topic`` and write ``events`` events; returns the payload size."""
    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20, "batch.size": 1 << 20})
    now = datetime.now(UTC)
    size = 0
    for n in range(events):
        message = PackageDelivered(
            package=Package(
                id=f"pkg-{n}",
                tracking_code=f"BR{n:09d}",
                weight_grams=n % 5000,
                recipient=Address(name=f"Recipient {n}", city="Campinas", country_code="BR"),
            ),
            received_by=f"person {n}",
        )
        event = EventEnvelope(
            id=str(uuid7()),
            type="packages.v1.PackageDelivered",
            source="bench",
            time=now,
            topic=topic,
            key=f"pkg-{n}",
            payload=message.SerializeToString(),
        )
        size = len(event.payload)
        while True:
            try:
                producer.produce(
                    topic, event.payload, event.kafka_key(), headers=event.kafka_headers()
                )
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise SystemExit("producer did not finish")
    return size


def bare_loop(servers: str, topic: str, events: int) -> float:
    """Events/s of a plain consume loop, from assignment to the last record."""
    assigned: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"bench.bare.{secrets.token_hex(3)}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic], on_assign=lambda c, p: assigned.append(time.perf_counter()))
    seen = 0
    touched = 0
    while seen < events:
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is None:
                seen += 1
                touched += len(message.value() or b"") + len(message.headers() or ())
    done = time.perf_counter()
    consumer.close()
    return events / (done - assigned[0])


class _AssignmentClock(logging.Handler):
    """Notes when the sink logs its partition assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "partitions assigned" and self.at is None:
            self.at = time.perf_counter()


def sink_run(
    servers: str, topic: str, events: int, roll_seconds: float, decode: bool
) -> dict[str, Any]:
    """Events/s of the lake sink, from assignment to every offset committed."""
    out = Path(tempfile.mkdtemp(prefix="lake-bench-"))
    clock = _AssignmentClock()
    logger = logging.getLogger("courier.lake")
    logger.addHandler(clock)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    metrics = LakeMetrics()
    decoder = PayloadDecoder.for_generated_code() if decode else PayloadDecoder([])
    config = SinkConfig(
        out=out,
        bootstrap_servers=servers,
        selection=TopicSelection(requested=(topic,)),
        group_id=f"bench.lake.{secrets.token_hex(3)}",
        policy=RollPolicy(max_age=roll_seconds),
    )
    sink = LakeSink(config, decoder, metrics)
    halt = threading.Event()
    runner = threading.Thread(target=sink.run, args=(halt,))
    ends = dict(enumerate(end_offsets(servers, topic, PARTITIONS)))
    runner.start()
    try:
        while not _all_committed(metrics, topic, ends):
            time.sleep(0.005)
        done = time.perf_counter()
    finally:
        halt.set()
        runner.join(60)
        logger.removeHandler(clock)
    assert clock.at is not None
    files = list_lake_files(out)
    [rows] = duckdb.sql(
        f"select count(*), count(payload_json) from read_parquet({[str(f.path) for f in files]})"
    ).fetchall()
    shutil.rmtree(out)
    assert rows is not None and rows[0] == events, rows
    return {
        "events_per_s": round(events / (done - clock.at)),
        "files": len(files),
        "bytes": sum(f.size for f in files),
        "rows_with_json": rows[1],
    }


def _all_committed(metrics: LakeMetrics, topic: str, ends: dict[int, int]) -> bool:
    for partition, end in ends.items():
        value = metrics.registry.get_sample_value(
            "courier_lake_committed_offset", {"topic": topic, "partition": str(partition)}
        )
        if value is None or value < end:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--roll-seconds", type=float, default=1.0)
    args = parser.parse_args()
    servers = StackConfig.from_env().bootstrap_servers
    topic = f"bench.lake.{secrets.token_hex(3)}"

    print(f"filling {topic} with {args.events} events ...", flush=True)
    payload_bytes = fill_topic(servers, topic, args.events)
    bare = bare_loop(servers, topic, args.events)
    print(f"bare confluent-kafka loop: {bare:,.0f} events/s", flush=True)
    sink = sink_run(servers, topic, args.events, args.roll_seconds, decode=True)
    print(f"lake sink (decoding JSON): {sink['events_per_s']:,} events/s", flush=True)
    raw = sink_run(servers, topic, args.events, args.roll_seconds, decode=False)
    print(f"lake sink (no decoding):   {raw['events_per_s']:,} events/s", flush=True)
    ratio = sink["events_per_s"] / bare
    print(f"ratio sink / bare loop: {ratio:.3f}")

    result = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": 2,
            "python": platform.python_version(),
            "pyarrow": pyarrow.__version__,
            "duckdb": duckdb.__version__,
        },
        "setup": {
            "events": args.events,
            "partitions": PARTITIONS,
            "payload_bytes": payload_bytes,
            "roll_seconds": args.roll_seconds,
            "measured": "assignment -> last record (bare) / every offset committed (sink)",
            "sink": "LakeSink in-process, defaults (64 MiB roll, zstd, fsync per file)",
        },
        "bare_consume_events_per_s": round(bare),
        "sink_events_per_s": sink["events_per_s"],
        "ratio_sink_to_bare": round(ratio, 3),
        "sink_no_decode_events_per_s": raw["events_per_s"],
        "ratio_no_decode_to_bare": round(raw["events_per_s"] / bare, 3),
        "sink_files": sink["files"],
        "sink_parquet_bytes": sink["bytes"],
        "sink_rows_with_json": sink["rows_with_json"],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
