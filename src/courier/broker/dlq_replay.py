"""Send dead-lettered events back to their consumer's retry topic.

Each replayed record keeps its value, key and event headers byte for byte; its bookkeeping
headers restart the count (attempt 0, due now) and keep the failed methods, so only the
methods that failed get it again. The producer is idempotent with ``acks=all``, and
nothing is recorded as replayed (see :mod:`courier.broker.dlq_ledger`) before Kafka has
acknowledged it. The DLQ itself is not changed: Kafka cannot delete single records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from courier.broker.config import ConsumerConfig
from courier.broker.dlq_ledger import PartitionLedger
from courier.broker.dlq_records import DlqRecord, read_records
from courier.broker.kafka_clients import (
    DEFAULT_TIMEOUT,
    KafkaUnavailable,
    idempotent_producer,
    partitions_of,
    reader,
    unreachable_message,
    watermarks,
)
from courier.broker.retry_headers import now_ms, with_retry_state


def replay_group(consumer: ConsumerConfig) -> str:
    """The consumer group that records what was replayed: ``courier.<name>.dlq-replay``."""
    return f"{consumer.group_id}.dlq-replay"


@dataclass(frozen=True)
class RecordFilter:
    """Which DLQ records to pick; an empty filter picks all. Criteria combine with AND.

    ``since_ms``/``until_ms`` bound when the record was dead-lettered (inclusive, exclusive);
    ``error`` is a case-insensitive substring of the last error or the last status.
    """

    event_ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None
    error: str | None = None

    def matches(self, record: DlqRecord) -> bool:
        """True if ``record`` passes every criterion set."""
        if self.event_ids and record.event_id not in self.event_ids:
            return False
        if self.types and record.event_type not in self.types:
            return False
        when = record.dead_lettered_ms
        if self.since_ms is not None and (when is None or when < self.since_ms):
            return False
        if self.until_ms is not None and (when is None or when >= self.until_ms):
            return False
        if self.error:
            state = record.state
            text = "" if state is None else f"{state.last_status} {state.last_error}"
            if self.error.lower() not in text.lower():
                return False
        return True


@dataclass
class ReplaySummary:
    """What a replay (or dry run) did, counted over the DLQ records it scanned."""

    dry_run: bool
    scanned: int = 0
    already_replayed: int = 0
    not_matching: int = 0
    matched: list[DlqRecord] = field(default_factory=list)
    replayed: int = 0
    unreplayable: list[DlqRecord] = field(default_factory=list)
    failed: list[tuple[DlqRecord, str]] = field(default_factory=list)
    limit_reached: bool = False
    ledger_truncated: bool = False

    @property
    def skipped(self) -> int:
        """Matched but not sent: no retry headers, or not acknowledged by Kafka."""
        return len(self.unreplayable) + len(self.failed)


class _RatePacer:
    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def replay(
    consumer: ConsumerConfig,
    bootstrap_servers: str,
    selection: RecordFilter,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    rate: float | None = None,
    from_beginning: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[DlqRecord], None] | None = None,
) -> ReplaySummary:
    """Replay the DLQ records of ``consumer`` that match ``selection`` to its retry topic.

    Skips records replayed before (unless ``from_beginning``), stops after ``limit``
    matches, paces sends to ``rate`` per second, waits for every acknowledgement, then
    records the acknowledged ones as replayed. ``dry_run`` only scans and counts.
    Raises KafkaUnavailable when the topics are missing or Kafka does not answer.
    """
    summary = ReplaySummary(dry_run=dry_run)
    kafka = reader(bootstrap_servers, replay_group(consumer))
    try:
        partitions_of(kafka, consumer.retry_topic, timeout)  # fail early if it is missing
        ledgers = read_ledgers(kafka, consumer.dlq_topic, timeout)
        start = None if from_beginning else {p: ledger.floor for p, ledger in ledgers.items()}
        if start:
            for partition, floor in start.items():  # records below the floor are not read again
                low, high = watermarks(kafka, consumer.dlq_topic, partition, timeout)
                summary.already_replayed += max(0, min(floor, high) - low)
        picked = _select(read_records(kafka, consumer.dlq_topic, start, timeout), summary, ledgers,
                         selection, limit, from_beginning)  # fmt: skip
        if dry_run:
            for record in picked:
                summary.matched.append(record)
            return summary
        acked = _send(
            consumer.retry_topic, bootstrap_servers, picked, summary, rate, timeout, progress
        )
        for partition, offsets in acked.items():
            ledger = ledgers.setdefault(partition, PartitionLedger())
            for offset in offsets:
                ledger.add(offset)
        if acked:
            summary.ledger_truncated = _commit(kafka, consumer.dlq_topic, ledgers, acked, timeout)
        return summary
    finally:
        kafka.close()


def _select(
    records: Iterable[DlqRecord],
    summary: ReplaySummary,
    ledgers: dict[int, PartitionLedger],
    selection: RecordFilter,
    limit: int | None,
    from_beginning: bool,
) -> Iterable[DlqRecord]:
    for record in records:
        summary.scanned += 1
        ledger = ledgers.get(record.partition)
        if not from_beginning and ledger is not None and record.offset in ledger:
            summary.already_replayed += 1
            continue
        if not selection.matches(record):
            summary.not_matching += 1
            continue
        if limit is not None and len(summary.matched) >= limit:
            summary.limit_reached = True
            return
        if record.state is None:
            summary.unreplayable.append(record)
            continue
        yield record


def _send(
    topic: str,
    bootstrap_servers: str,
    records: Iterable[DlqRecord],
    summary: ReplaySummary,
    rate: float | None,
    timeout: float,
    progress: Callable[[DlqRecord], None] | None,
) -> dict[int, list[int]]:
    producer: Producer = idempotent_producer(bootstrap_servers)
    pacer = _RatePacer(rate)
    acked: dict[int, list[int]] = {}

    def on_delivery(record: DlqRecord) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                summary.replayed += 1
                acked.setdefault(record.partition, []).append(record.offset)
                if progress is not None:
                    progress(record)
            else:
                summary.failed.append((record, error.str()))

        return report

    sent = 0
    for record in records:
        assert record.state is not None
        summary.matched.append(record)
        pacer.wait()
        state = record.state.for_replay(due_at_ms=now_ms())
        headers: list[tuple[str, str | bytes | None]] = [*with_retry_state(record.headers, state)]
        while True:
            try:
                producer.produce(topic, value=record.value, key=record.key, headers=headers,
                                 on_delivery=on_delivery(record))  # fmt: skip
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        sent += 1
        producer.poll(0)
    deadline = time.monotonic() + 30 + timeout
    while sent and producer.flush(1.0) > 0:
        if time.monotonic() > deadline:
            break
    undelivered = sent - summary.replayed - len(summary.failed)
    if undelivered > 0:
        raise KafkaUnavailable(
            f"{undelivered} replayed record(s) were not acknowledged by Kafka in time; "
            "nothing recorded for them (a later replay sends them again)"
        )
    return acked


def read_ledgers(kafka: Consumer, topic: str, timeout: float) -> dict[int, PartitionLedger]:
    """What was replayed from each DLQ partition (the reader's group is the replay group)."""
    partitions = [TopicPartition(topic, p) for p in partitions_of(kafka, topic, timeout)]
    try:
        committed = kafka.committed(partitions, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable_message(exc, timeout)) from None
    return {tp.partition: PartitionLedger.decode(tp.offset, tp.metadata) for tp in committed}


def _commit(
    kafka: Consumer,
    topic: str,
    ledgers: dict[int, PartitionLedger],
    touched: Iterable[int],
    timeout: float,
) -> bool:
    offsets = []
    truncated = False
    for partition in touched:
        ledger = ledgers[partition]
        metadata = ledger.encode()
        truncated |= ledger.truncated
        offsets.append(TopicPartition(topic, partition, ledger.floor, metadata))
    try:
        kafka.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"replayed, but recording it failed ({unreachable_message(exc, timeout)}); "
            "a later replay would send these events again"
        ) from None
    return truncated
