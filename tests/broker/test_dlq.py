"""``courier dlq list | show | replay`` against the dev stack's Kafka.

The tests write dead-lettered records into a DLQ topic themselves (as the broker would:
the event's contract-2 headers plus the bookkeeping headers), then read the retry topic
back to check what a replay wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from courier.broker.config import ConsumerConfig, parse_config
from courier.broker.dlq import parse_when
from courier.broker.dlq_records import DlqRecord, read_records
from courier.broker.dlq_replay import RecordFilter, replay, replay_group
from courier.broker.kafka_clients import reader
from courier.broker.retry_headers import RetryState, strip_bookkeeping, with_retry_state
from courier.broker.topics import ensure_topics
from courier.events import EventEnvelope, uuid7

CONFIG = """
topics: {{partitions: 2}}
consumers:
  service-b:
    grpc-server-hostname: localhost
    grpc-server-port: 54321
    grpc-service: events.v1.EventsAPI
    max-retry-attempts: 5
    batch-size: 5
    retry-topic: {name}_b_retry
    dlq-topic: {name}_b_dlq
    distribution:
      - topic: {name}_event_x
        services: [EndpointC, EndpointD]
"""
OLD_MS = 1_600_000_000_000  # 2020-09-13: "dead-lettered long ago"
DELIVERED = "packages.v1.PackageDelivered"
CREATED = "packages.v1.PackageCreated"


@dataclass(frozen=True)
class Written:
    envelope: EventEnvelope
    state: RetryState
    partition: int


@dataclass
class Dlq:
    path: Path
    consumer: ConsumerConfig
    servers: str
    written: list[Written]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "courier", "dlq", args[0], "service-b", *args[1:]]
        command += ["--config", str(self.path), "--bootstrap-servers", self.servers]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env=dict(os.environ))  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def retry_records(self) -> list[DlqRecord]:
        kafka = reader(self.servers, "courier.test.reader")
        try:
            return list(read_records(kafka, self.consumer.retry_topic))
        finally:
            kafka.close()


def _write(producer: Producer, topic: str, written: Written) -> None:
    headers = with_retry_state(written.envelope.kafka_headers(), written.state)
    producer.produce(topic, value=written.envelope.payload, key=written.envelope.kafka_key(),
                     headers=headers, partition=written.partition)  # fmt: skip


@pytest.fixture()
def dlq(unique: Callable[[str], str], bootstrap_servers: str, tmp_path: Path) -> Iterator[Dlq]:
    path = tmp_path / "broker.yaml"
    path.write_text(CONFIG.format(name=unique("dlq")))
    config = parse_config(path.read_text())
    consumer = config.consumers["service-b"]
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    ensure_topics(admin, config)
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    written = []
    now = int(time.time() * 1000)
    for index in range(6):
        envelope = EventEnvelope(
            id=str(uuid7()),
            type=DELIVERED if index < 4 else CREATED,
            source="packages",
            time=datetime.now(UTC),
            topic=consumer.topics[0],
            payload=bytes([index]) * (index + 1),
            key=f"package-{index}",
            headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
        state = RetryState.first_failure(
            consumer="service-b",
            topic=consumer.topics[0],
            partition=index % 2,
            offset=100 + index,
            failed_methods=["/events.v1.EventsAPI/EndpointC"],
            last_status="UNAVAILABLE" if index % 2 else "INTERNAL",
            last_error=f"connection refused #{index}" if index % 2 else f"boom #{index}",
            due_at_ms=now,
        ).next_attempt(
            failed_methods=["/events.v1.EventsAPI/EndpointC"],
            last_status="UNAVAILABLE" if index % 2 else "INTERNAL",
            last_error=f"connection refused #{index}" if index % 2 else f"boom #{index}",
            due_at_ms=now,
        )
        state = state.dead_lettered(at_ms=OLD_MS if index == 1 else now, attempt=5)
        item = Written(envelope, state, partition=index % 2)
        _write(producer, consumer.dlq_topic, item)
        written.append(item)
    # A record without bookkeeping headers: listed, never replayed.
    producer.produce(consumer.dlq_topic, value=b"?", headers=[("ce_id", b"stray")], partition=0)
    assert producer.flush(30) == 0
    yield Dlq(path, consumer, bootstrap_servers, written)
    topics = [*consumer.topics, consumer.retry_topic, consumer.dlq_topic]
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        with contextlib.suppress(KafkaException):
            future.result()
    for future in admin.delete_consumer_groups([replay_group(consumer)]).values():
        with contextlib.suppress(KafkaException):
            future.result()


@pytest.mark.integration
def test_list_shows_every_record_with_its_failure(dlq: Dlq) -> None:
    result = dlq.cli("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted([w.envelope.id for w in dlq.written] + ["stray"])
    first = next(r for r in rows if r["id"] == dlq.written[1].envelope.id)
    assert first["type"] == DELIVERED and first["attempts"] == 5
    assert (first["original_topic"], first["original_offset"]) == (dlq.consumer.topics[0], 101)
    assert first["last_status"] == "UNAVAILABLE"
    assert first["last_error"] == "connection refused #1"
    assert first["dead_lettered_at"] == "2020-09-13T12:26:40Z"
    stray = next(r for r in rows if r["id"] == "stray")
    assert stray["problem"] == "no courier retry headers"

    table = dlq.cli("list", "--type", CREATED)
    assert table.returncode == 0
    assert "2 of 7 event(s)" in table.stdout and dlq.written[5].envelope.id in table.stdout


@pytest.mark.integration
def test_show_one_event_and_a_missing_one(dlq: Dlq) -> None:
    target = dlq.written[3].envelope
    result = dlq.cli("show", target.id)
    assert result.returncode == 0, result.stderr
    expected = (target.type, "package-3", "connection refused #3", "traceparent: 00-0af7",
                "/events.v1.EventsAPI/EndpointC", "4 bytes: 03030303", "offset 103")  # fmt: skip
    for text in expected:
        assert text in result.stdout, text
    missing = dlq.cli("show", "no-such-id")
    assert missing.returncode == 1 and "no event 'no-such-id'" in missing.stderr


@pytest.mark.integration
def test_dry_run_sends_nothing(dlq: Dlq) -> None:
    result = dlq.cli("replay", "--dry-run", "--type", CREATED)
    assert result.returncode == 0, result.stderr
    assert "matched 2, would replay 2" in result.stdout
    assert dlq.retry_records() == []


@pytest.mark.integration
def test_replay_resets_bookkeeping_and_keeps_the_event(dlq: Dlq) -> None:
    selection = RecordFilter(types=frozenset({DELIVERED}), error="refused",
                             since_ms=parse_when("2021-01-01"))  # fmt: skip
    before = int(time.time() * 1000)
    summary = replay(dlq.consumer, dlq.servers, selection)
    # Delivered + "refused" are #1 and #3; #1 was dead-lettered in 2020.
    assert (summary.replayed, len(summary.matched), summary.not_matching) == (1, 1, 6)
    (record,) = dlq.retry_records()
    original = dlq.written[3]
    assert record.value == original.envelope.payload
    assert record.key == original.envelope.kafka_key()
    assert strip_bookkeeping(record.headers) == original.envelope.kafka_headers()
    state = record.state
    assert state is not None
    assert (state.attempt, state.dead_lettered_at_ms) == (0, None)
    assert before <= state.due_at_ms <= int(time.time() * 1000)
    assert state.failed_methods == ("/events.v1.EventsAPI/EndpointC",)
    assert (state.original_topic, state.original_partition, state.original_offset) == (
        dlq.consumer.topics[0], 1, 103,
    )  # fmt: skip
    assert (state.last_status, state.last_error) == ("UNAVAILABLE", "connection refused #3")


@pytest.mark.integration
def test_replay_is_recorded_so_the_next_one_skips_what_was_sent(dlq: Dlq) -> None:
    first = dlq.cli("replay", "--event-id", dlq.written[2].envelope.id)
    assert first.returncode == 0, first.stderr
    assert "matched 1, replayed 1, skipped 0" in first.stdout

    second = dlq.cli("replay")
    assert second.returncode == 0, second.stderr
    assert "matched 6, replayed 5, skipped 1 (already replayed 1" in second.stdout
    assert "skipped 0:" in second.stderr and "(stray): no courier retry headers" in second.stderr

    third = dlq.cli("replay")
    assert "replayed 0" in third.stdout and "already replayed 6" in third.stdout
    assert sorted(r.event_id or "" for r in dlq.retry_records()) == sorted(
        w.envelope.id for w in dlq.written
    )

    again = dlq.cli("replay", "--from-beginning", "--type", CREATED)
    assert "matched 2, replayed 2" in again.stdout
    assert len(dlq.retry_records()) == 8


@pytest.mark.integration
def test_limit_and_rate(dlq: Dlq) -> None:
    started = time.monotonic()
    summary = replay(dlq.consumer, dlq.servers, RecordFilter(), limit=3, rate=10)
    elapsed = time.monotonic() - started
    assert (summary.replayed, summary.limit_reached) == (3, True)
    assert elapsed >= 0.2  # three sends paced 0.1 s apart: a lower bound, not a speed claim
    rest = replay(dlq.consumer, dlq.servers, RecordFilter())
    assert (rest.replayed, rest.already_replayed) == (3, 3)


@pytest.mark.integration
def test_missing_topics_and_unknown_consumer_are_clear_errors(dlq: Dlq, tmp_path: Path) -> None:
    unknown = subprocess.run(
        [sys.executable, "-m", "courier", "dlq", "list", "nobody", "--config", str(dlq.path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2 and "no consumer 'nobody'" in unknown.stderr
    other = tmp_path / "other.yaml"
    other.write_text(dlq.path.read_text().replace("_b_dlq", "_b_dlq_missing"))
    result = subprocess.run(
        [sys.executable, "-m", "courier", "dlq", "list", "service-b", "--config", str(other),
         "--bootstrap-servers", dlq.servers],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_dead_kafka_is_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(CONFIG.format(name="nowhere"))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "courier", "dlq", "replay", "service-b", "--config", str(path),
         "--bootstrap-servers", "127.0.0.1:1", "--timeout", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Kafka did not answer within 2s" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 15


def test_parse_when() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_when("2026-01-02T10:00:00Z", now) == parse_when("2026-01-02T10:00:00+00:00", now)
    assert parse_when("2h", now) == int(datetime(2026, 1, 2, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert parse_when("2026-01-02", now) == int(datetime(2026, 1, 2, tzinfo=UTC).timestamp() * 1000)
    with pytest.raises(ValueError):
        parse_when("yesterday", now)
