"""Outbox and relay figures, measured side by side in one run on this machine.

    .venv/bin/python benchmarks/relay_outbox.py [--events 50000] [--rate 1000] [--seconds 10]

1. relay throughput (events/s) draining a pre-filled outbox: log mode (pgoutput slot) and
   poll mode (SKIP LOCKED rounds), same rows, same Kafka;
2. commit -> Kafka ack latency, p50/p99, with writers committing one event per transaction
   at a steady rate (default 1,000 events/s); "commit" is Postgres' commit timestamp from the
   replication stream, "ack" is the producer's delivery callback. Writers use
   ``synchronous_commit=on`` (Postgres' default; the dev stack's server default is off);
3. the cost of ``build_event(...).save()``: a Django ``@atomic`` block that saves one business
   row, with and without the event, and the same through SQLAlchemy; reported as a ratio.

Needs the dev stack (``courier dev up``). Writes benchmarks/results/relay_outbox.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.devstack.config import StackConfig
from courier.outbox.table import COLUMNS, create_table_statements, row_values
from courier.relay.logical import LogicalRelay, LogicalRelayConfig
from courier.relay.metrics import RelayMetrics
from courier.relay.poll import PollRelay, PollRelayConfig
from courier.relay.publisher import KafkaPublisher

RESULTS = Path(__file__).parent / "results" / "relay_outbox.json"


class TimedMetrics(RelayMetrics):
    """RelayMetrics that also keeps every event's exact lag and counts acks."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.lags: list[float] = []
        self.count = 0

    def acked(self, topic: str, started: datetime) -> None:
        self.lags.append(time.time() - started.timestamp())
        self.count += 1


def _pg(url: str) -> Any:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _create_table(url: str, table: str) -> None:
    with _pg(url) as conn, conn.cursor() as cur:
        for statement in create_table_statements("postgresql", table):
            cur.execute(statement)


def _drop_table(url: str, table: str) -> None:
    conn = _pg(url)
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.close()


def _prefill(url: str, table: str, topic: str, events: int) -> None:
    conn = psycopg2.connect(url)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with conn, conn.cursor() as cur:
        rows = [
            row_values(
                "postgresql",
                build_event(
                    StringValue(value=f"event {i}"), key=f"k{i % 500}", topic=topic, source="bench"
                ).envelope,
            )
            for i in range(events)
        ]
        psycopg2.extras.execute_values(
            cur, f'INSERT INTO "{table}" ({columns}) VALUES %s', rows, page_size=2000
        )
    conn.close()


def _wait_for(metrics: TimedMetrics, count: int, timeout: float) -> float:
    start = time.monotonic()
    while metrics.count < count:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"only {metrics.count}/{count} events acknowledged")
        time.sleep(0.005)
    return time.monotonic()


def throughput_log(url: str, kafka: str, events: int) -> dict[str, Any]:
    suffix = secrets.token_hex(3)
    table, topic = f"bench_log_{suffix}", f"bench.log.{suffix}"
    _create_table(url, table)
    metrics = TimedMetrics("log")
    config = LogicalRelayConfig(url, table=table, slot=f"bench_{suffix}", cleanup_after=None)
    relay = LogicalRelay(config, KafkaPublisher(kafka), metrics)
    relay.ensure_slot()
    _prefill(url, table, topic, events)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    finished = _wait_for(metrics, events, 300)
    stop.set()
    thread.join(60)
    relay.drop_slot()
    _drop_table(url, table)
    seconds = finished - started
    return {"events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds)}


def throughput_poll(url: str, kafka: str, events: int) -> dict[str, Any]:
    suffix = secrets.token_hex(3)
    table, topic = f"bench_poll_{suffix}", f"bench.poll.{suffix}"
    _create_table(url, table)
    _prefill(url, table, topic, events)
    metrics = TimedMetrics("poll")
    relay = PollRelay(
        PollRelayConfig(url, table=table, batch_size=2000), KafkaPublisher(kafka), metrics
    )
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    finished = _wait_for(metrics, events, 300)
    stop.set()
    thread.join(60)
    _drop_table(url, table)
    seconds = finished - started
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
        "batch_size": 2000,
    }


def latency(url: str, kafka: str, rate: float, seconds: float) -> dict[str, Any]:
    suffix = secrets.token_hex(3)
    table, topic = f"bench_lat_{suffix}", f"bench.lat.{suffix}"
    _create_table(url, table)
    metrics = TimedMetrics("log")
    config = LogicalRelayConfig(url, table=table, slot=f"bench_{suffix}", cleanup_after=None)
    relay = LogicalRelay(config, KafkaPublisher(kafka), metrics)
    relay.ensure_slot()
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    while not metrics.healthy:
        time.sleep(0.01)
    total = int(rate * seconds)
    writers = 2
    done = [0] * writers

    def write(n: int) -> None:
        # The dev stack runs with synchronous_commit=off: then a commit reaches the walsender
        # only at the WAL writer's next flush (wal_writer_delay, 200 ms). Production default
        # is on, so the writers ask for it.
        conn = psycopg2.connect(url, options="-c synchronous_commit=on")
        interval = writers / rate
        start = time.monotonic()
        for i in range(n, total, writers):
            due = start + (i // writers) * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with conn:
                build_event(
                    StringValue(value=str(i)), key=f"k{i % 50}", topic=topic, source="bench"
                ).save(conn, table=table)
            done[n] += 1
        conn.close()

    began = time.monotonic()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrote_for = time.monotonic() - began
    _wait_for(metrics, total, 60)
    stop.set()
    thread.join(60)
    relay.drop_slot()
    _drop_table(url, table)
    lags = sorted(metrics.lags)
    return {
        "target_rate": rate,
        "achieved_rate": round(total / wrote_for),
        "events": total,
        "p50_ms": round(1000 * lags[len(lags) // 2], 2),
        "p99_ms": round(1000 * lags[int(len(lags) * 0.99) - 1], 2),
        "max_ms": round(1000 * lags[-1], 2),
        "mean_ms": round(1000 * statistics.fmean(lags), 2),
    }


def _alternate(
    with_event: Callable[[], None], without: Callable[[], None], rounds: int, block: int
) -> tuple[float, float]:
    """Mean seconds per call of each, run in alternating blocks so drift hits both alike."""
    spent = {True: 0.0, False: 0.0}
    for _ in range(3):  # warm-up
        with_event()
        without()
    for r in range(rounds):
        order = [(True, with_event), (False, without)]
        if r % 2:
            order.reverse()
        for flag, call in order:
            started = time.perf_counter()
            for _ in range(block):
                call()
            spent[flag] += time.perf_counter() - started
    n = rounds * block
    return spent[True] / n, spent[False] / n


def save_cost_django(url: str, rounds: int, block: int) -> dict[str, Any]:
    from urllib.parse import unquote, urlsplit

    from django.conf import settings

    suffix = secrets.token_hex(3)
    parts = urlsplit(url)
    settings.configure(
        INSTALLED_APPS=["courier.outbox.django"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.path.lstrip("/"),
                "USER": unquote(parts.username or "postgres"),
                "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname,
                "PORT": str(parts.port or 5432),
                "CONN_MAX_AGE": None,
            }
        },
        USE_TZ=True,
        TIME_ZONE="UTC",
        COURIER_OUTBOX_TABLE=f"bench_dj_outbox_{suffix}",
        COURIER_SERVICE_NAME="bench",
    )
    import django

    django.setup()
    from django.db import connection, models, transaction

    from courier.outbox.django.models import OutboxEvent

    class Parcel(models.Model):  # type: ignore[misc]
        status = models.TextField()

        class Meta:
            app_label = "bench"
            db_table = f"bench_dj_parcel_{suffix}"

    with connection.schema_editor() as editor:
        editor.create_model(OutboxEvent)
        editor.create_model(Parcel)
    topic = f"bench.dj.{suffix}"

    def with_event() -> None:
        with transaction.atomic():
            parcel = Parcel.objects.create(status="delivered")
            build_event(StringValue(value=str(parcel.pk)), key=str(parcel.pk), topic=topic).save()

    def without() -> None:
        with transaction.atomic():
            Parcel.objects.create(status="delivered")

    try:
        cost_with, cost_without = _alternate(with_event, without, rounds, block)
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Parcel)
            editor.delete_model(OutboxEvent)
    return _cost(cost_with, cost_without, rounds * block)


def save_cost_sqlalchemy(url: str, rounds: int, block: int) -> dict[str, Any]:
    from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert
    from sqlalchemy.orm import Session

    from courier.outbox.sqlalchemy import outbox_table

    suffix = secrets.token_hex(3)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    metadata = MetaData()
    parcels = Table(
        f"bench_sa_parcel_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("status", Text),
    )
    outbox = outbox_table(metadata, name=f"bench_sa_outbox_{suffix}")
    metadata.create_all(engine)
    topic = f"bench.sa.{suffix}"

    def with_event() -> None:
        with Session(engine) as session, session.begin():
            pk = session.execute(
                insert(parcels).values(status="d").returning(parcels.c.id)
            ).scalar()
            build_event(StringValue(value=str(pk)), key=str(pk), topic=topic).save(
                session, table=outbox.name
            )

    def without() -> None:
        with Session(engine) as session, session.begin():
            session.execute(insert(parcels).values(status="d").returning(parcels.c.id)).scalar()

    try:
        cost_with, cost_without = _alternate(with_event, without, rounds, block)
    finally:
        metadata.drop_all(engine)
        engine.dispose()
    return _cost(cost_with, cost_without, rounds * block)


def _cost(cost_with: float, cost_without: float, n: int) -> dict[str, Any]:
    return {
        "transactions_each": n,
        "with_event_ms": round(cost_with * 1000, 3),
        "without_event_ms": round(cost_without * 1000, 3),
        "ratio": round(cost_with / cost_without, 2),
    }


def _settings(url: str) -> dict[str, str]:
    conn = _pg(url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
            "'wal_writer_delay', 'server_version')"
        )
        found = dict(cur.fetchall())
    conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    stack = StackConfig.from_env()
    url = os.environ.get("COURIER_DATABASE_URL", stack.database_url)
    kafka = os.environ.get("COURIER_BOOTSTRAP_SERVERS", stack.bootstrap_servers)

    results: dict[str, Any] = {
        "measured_at": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "postgres": _settings(url),
    }
    print(f"relay throughput, pre-filled outbox of {args.events} events ...", flush=True)
    results["throughput_log"] = throughput_log(url, kafka, args.events)
    print(f"  log mode : {results['throughput_log']['events_per_s']:>8} events/s", flush=True)
    results["throughput_poll"] = throughput_poll(url, kafka, args.events)
    print(f"  poll mode: {results['throughput_poll']['events_per_s']:>8} events/s", flush=True)
    print(
        f"commit -> Kafka ack at {args.rate:.0f} events/s for {args.seconds:.0f} s ...", flush=True
    )
    results["latency_log"] = latency(url, kafka, args.rate, args.seconds)
    lat = results["latency_log"]
    print(
        f"  achieved {lat['achieved_rate']} events/s; p50 {lat['p50_ms']} ms, "
        f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms",
        flush=True,
    )
    print("cost of build_event(...).save() in a one-row business transaction ...", flush=True)
    results["save_cost_django"] = save_cost_django(url, args.rounds, args.block)
    results["save_cost_sqlalchemy"] = save_cost_sqlalchemy(url, args.rounds, args.block)
    for name in ("django", "sqlalchemy"):
        cost = results[f"save_cost_{name}"]
        print(
            f"  {name:<10}: {cost['with_event_ms']} ms vs {cost['without_event_ms']} ms "
            f"per transaction -> x{cost['ratio']}",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
