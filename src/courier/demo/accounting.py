"""Where every produced event is: on Kafka, delivered to each method, or in a DLQ.

The demo's promise is a reconciliation: each produced event id must be delivered to every
consumer method whose topic carries it, or sit in that consumer's DLQ. Nothing else is
acceptable, and nothing is counted twice (the consumers' tables are keyed by event id
and method).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from courier.broker.config import BrokerConfig
from courier.broker.dlq_records import read_records
from courier.broker.kafka_clients import KafkaUnavailable, partitions_of, reader, watermarks
from courier.demo.endpoints import metric_families
from courier.lake.query import LakeQueryError, query_lake

KAFKA_TIMEOUT = 5.0


@dataclass(frozen=True)
class Route:
    """One consumer method that must receive every event of ``topic``."""

    consumer: str
    method: str
    topic: str
    table: str
    dlq_topic: str


@dataclass(frozen=True)
class RouteTally:
    route: Route
    expected: int
    delivered: int
    dead_lettered: int
    missing: int


@dataclass(frozen=True)
class Snapshot:
    produced: int
    on_kafka: int
    tallies: tuple[RouteTally, ...]
    retried: int
    dead_lettered: int
    in_lake: int

    @property
    def lake_missing(self) -> int:
        return self.produced - self.in_lake

    @property
    def complete(self) -> bool:
        return (
            self.produced > 0
            and all(t.missing == 0 for t in self.tallies)
            and self.lake_missing == 0
        )


def routes_for(config: BrokerConfig, tables: dict[str, str]) -> list[Route]:
    """Every (consumer, method, topic) of the broker config; ``tables`` maps consumer -> table."""
    return [
        Route(name, ref.method, dist.topic, tables[name], consumer.dlq_topic)
        for name, consumer in config.consumers.items()
        for dist in consumer.distribution
        for ref in dist.methods
    ]


def read_produced(ids_file: Path) -> dict[str, str]:
    """event id -> topic, from the producer's log of committed events."""
    produced: dict[str, str] = {}
    if not ids_file.exists():
        return produced
    for line in ids_file.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            produced[record["id"]] = record["topic"]
    return produced


class Accountant:
    """Counts, on demand, what the demo's services have done so far."""

    def __init__(
        self,
        *,
        routes: list[Route],
        ids_file: Path,
        database_url: str,
        bootstrap_servers: str,
        broker_metrics_url: str,
        lake_dir: Path,
    ) -> None:
        self.routes = routes
        self.lake_dir = lake_dir
        self.ids_file = ids_file
        self.database_url = database_url
        self.broker_metrics_url = broker_metrics_url
        self._kafka = reader(bootstrap_servers, "courier-demo-accountant")
        self._dlq_ids: dict[str, set[str]] = {}
        self._dlq_positions: dict[str, dict[int, int]] = {}  # topic -> partition -> next offset

    def close(self) -> None:
        self._kafka.close()

    def snapshot(self) -> Snapshot:
        produced = read_produced(self.ids_file)
        delivered = self._delivered()
        tallies = []
        for route in self.routes:
            expected = {i for i, topic in produced.items() if topic == route.topic}
            got = delivered.get((route.table, route.method), set()) & expected
            dead = self._dlq(route.dlq_topic) & (expected - got)
            tallies.append(
                RouteTally(route, len(expected), len(got), len(dead), len(expected - got - dead))
            )
        topics = sorted({r.topic for r in self.routes})
        dlq_topics = sorted({r.dlq_topic for r in self.routes})
        in_lake = self._lake_ids() & produced.keys()
        return Snapshot(
            produced=len(produced),
            on_kafka=self._records_on(topics),
            tallies=tuple(tallies),
            retried=self._retries(),
            dead_lettered=sum(len(self._dlq(t)) for t in dlq_topics),
            in_lake=len(in_lake),
        )

    def _lake_ids(self) -> set[str]:
        """Event ids in the lake's Parquet files (each file is complete: renamed when done)."""
        if not self.lake_dir.exists():
            return set()
        try:
            result = query_lake(self.lake_dir, "SELECT DISTINCT id FROM events")
            return {str(row[0]) for row in result.rows}
        except LakeQueryError:
            return set()

    def _delivered(self) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        with psycopg2.connect(self.database_url) as conn, conn.cursor() as cur:
            for table in sorted({r.table for r in self.routes}):
                cur.execute("SELECT to_regclass(%s)", (table,))
                row = cur.fetchone()
                if row is None or row[0] is None:
                    continue
                cur.execute(f'SELECT method, event_id FROM "{table}"')
                for method, event_id in cur.fetchall():
                    found.setdefault((table, method), set()).add(event_id)
        conn.close()
        return found

    def _partitions(self, topic: str) -> list[int]:
        try:
            return partitions_of(self._kafka, topic, KAFKA_TIMEOUT)
        except KafkaUnavailable:
            return []

    def _records_on(self, topics: Iterable[str]) -> int:
        total = 0
        for topic in topics:
            for partition in self._partitions(topic):
                # Kafka may still be electing a leader for a new topic: count it next time.
                with contextlib.suppress(KafkaUnavailable):
                    low, high = watermarks(self._kafka, topic, partition, KAFKA_TIMEOUT)
                    total += high - low
        return total

    def _dlq(self, topic: str) -> set[str]:
        """Event ids in ``topic``, read incrementally from where the last call stopped."""
        ids = self._dlq_ids.setdefault(topic, set())
        positions = self._dlq_positions.setdefault(topic, {})
        with contextlib.suppress(KafkaUnavailable):  # not answering now: the rest next time
            for record in read_records(self._kafka, topic, positions, KAFKA_TIMEOUT):
                positions[record.partition] = record.offset + 1
                if record.event_id is not None:
                    ids.add(record.event_id)
        return ids

    def _retries(self) -> int:
        """The broker's retry count so far (0 while its metrics port does not answer)."""
        try:
            families = metric_families(self.broker_metrics_url, timeout=2)
        except OSError:
            return 0
        return int(
            sum(
                sample.value
                for family in families
                for sample in family.samples
                if sample.name == "courier_broker_retries_total"
            )
        )
