"""``courier lake sink``: Kafka -> Parquet files, with nothing lost and nothing doubled.

The loop, in one consumer group (``courier.lake`` by default, its own offsets):

1. consume a batch; each record becomes a row in the buffer of its
   ``(topic, partition, day)`` (:mod:`courier.lake.buffers`);
2. buffers that are big or old enough are written with
   :func:`~courier.lake.parquet_writer.write_parquet_durably` (temp file, fsync, rename,
   fsync the directory) under a name made of topic, partition and first/last offset;
3. only then are offsets committed, each partition up to its oldest still-open buffer.

A crash loses only uncommitted offsets, which Kafka hands out again; the re-read records
land in files that either replace a file of the same name (same records) or overlap an
existing one, which readers and compaction resolve by ``(topic, partition, offset)``.
On SIGTERM (``stop`` set) every buffer is written and committed before the consumer leaves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from courier.lake.buffers import RollPolicy, SegmentBuffer, SinkBuffers
from courier.lake.decode import PayloadDecoder
from courier.lake.files import segment_path
from courier.lake.metrics import LakeMetrics
from courier.lake.parquet_writer import write_parquet_durably
from courier.lake.records import is_broker_copy, lake_row
from courier.lake.topics import TopicSelection

log = logging.getLogger("courier.lake")
_kafka_log = logging.getLogger("courier.lake.kafka")

DEFAULT_GROUP = "courier.lake"
COMMIT_INTERVAL = 1.0


class SinkFailed(RuntimeError):
    """Kafka reported a fatal error; the sink stops without committing anything more."""


@dataclass(frozen=True)
class SinkConfig:
    """Everything ``courier lake sink`` was asked to do."""

    out: Path
    bootstrap_servers: str
    selection: TopicSelection = field(default_factory=TopicSelection)
    group_id: str = DEFAULT_GROUP
    policy: RollPolicy = field(default_factory=RollPolicy)
    skip_broker_copies: bool | None = None  # None: skip only when discovering topics
    topic_refresh: float = 30.0
    batch_size: int = 1000
    consumer_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def skips_copies(self) -> bool:
        if self.skip_broker_copies is None:
            return self.selection.discovers
        return self.skip_broker_copies


class LakeSink:
    """One sink process: consumer, buffers, writer and committer (single-threaded)."""

    def __init__(
        self,
        config: SinkConfig,
        decoder: PayloadDecoder,
        metrics: LakeMetrics | None = None,
    ) -> None:
        self.config = config
        self.decoder = decoder
        self.metrics = metrics or LakeMetrics()
        self.buffers = SinkBuffers(config.policy)
        self.topics: list[str] = []
        self._consumer: Consumer | None = None
        self._running = False
        self._warned_topics: set[str] = set()
        self._wrote = False
        self._failed = False

    @property
    def group_id(self) -> str:
        return self.config.group_id

    @property
    def healthy(self) -> bool:
        """Running and subscribed (for ``/healthz``)."""
        return self._running and bool(self.topics)

    def run(self, stop: threading.Event) -> None:
        """Consume and write until ``stop`` is set; then write everything and commit it."""
        consumer = Consumer(self._consumer_config())
        self._consumer = consumer
        self._running = True
        next_refresh = 0.0
        next_commit = time.monotonic() + COMMIT_INTERVAL
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    self._refresh_subscription(consumer)
                    next_refresh = (
                        now + self.config.topic_refresh
                        if self.config.selection.needs_metadata
                        else float("inf")
                    )
                if not self.topics:
                    stop.wait(min(1.0, self.config.topic_refresh))
                    continue
                for message in consumer.consume(self.config.batch_size, timeout=0.2):
                    self._take(message)
                self._write(self.buffers.due())
                # Commit as soon as files are durable: the smaller the gap, the fewer records
                # a crash makes the next run write twice (into overlapping files).
                if self._wrote or time.monotonic() >= next_commit:
                    self._commit(consumer)
                    self._wrote = False
                    next_commit = time.monotonic() + COMMIT_INTERVAL
                self.metrics.buffered.set(self.buffers.buffered_rows)
            self._write(self.buffers.open_buffers())
            self._commit(consumer)
            log.info("sink stopped; every buffered event written and committed")
        except BaseException:
            self._failed = True  # close() revokes: write and commit nothing more
            raise
        finally:
            self._running = False
            consumer.close()
            self._consumer = None

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.config.bootstrap_servers,
            "group.id": self.config.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            "logger": _kafka_log,
            **self.config.consumer_overrides,
        }

    def _refresh_subscription(self, consumer: Consumer) -> None:
        selection = self.config.selection
        if selection.needs_metadata:
            try:
                available = list(consumer.list_topics(timeout=10).topics)
            except KafkaException as exc:
                log.warning("cannot list topics", extra={"error": str(exc)})
                return
        else:
            available = []
        wanted = selection.choose(available)
        if wanted == self.topics:
            return
        if not wanted:
            log.warning("no topics to read yet; waiting for some to appear")
            if self.topics:
                consumer.unsubscribe()
        else:
            log.info("subscribing", extra={"topics": wanted})
            consumer.subscribe(
                wanted, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
            )
        self.topics = wanted

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            self._kafka_error(error, message.topic())
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        if self.config.skips_copies and is_broker_copy(message.headers()):
            self.buffers.skip(topic, partition, offset)
            self.metrics.skipped.labels(topic).inc()
            return
        full = self.buffers.add(lake_row(message, self.decoder), topic, partition, offset)
        if full is not None:
            self._write([full])

    def _kafka_error(self, error: KafkaError, topic: str | None) -> None:
        if error.fatal():
            raise SinkFailed(error.str())
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and topic:
            if topic not in self._warned_topics:
                self._warned_topics.add(topic)
                log.warning("topic does not exist (yet)", extra={"topic": topic})
            return
        log.warning("kafka error", extra={"error": error.str(), "topic": topic})

    def _write(self, buffers: Sequence[SegmentBuffer]) -> None:
        for buffer in buffers:
            started = time.perf_counter()
            name = buffer.name
            path = segment_path(self.config.out, name, buffer.day)
            size = write_parquet_durably(
                buffer.table(),
                path,
                replace=True,
                metadata={"courier.lake.writer": "sink", "courier.lake.group": self.group_id},
            )
            self.buffers.written(buffer)
            self._wrote = True
            self._count(buffer, size, time.perf_counter() - started)
            log.info(
                "file written",
                extra={
                    "file": str(path.relative_to(self.config.out)),
                    "events": buffer.rows,
                    "first_offset": name.first,
                    "last_offset": name.last,
                },
            )

    def _count(self, buffer: SegmentBuffer, size: int, seconds: float) -> None:
        topic = buffer.topic
        self.metrics.events_written.labels(topic).inc(buffer.rows)
        self.metrics.files_written.labels(topic).inc()
        self.metrics.bytes_written.labels(topic).inc(size)
        self.metrics.flush_seconds.labels(topic).observe(seconds)
        if buffer.envelope_errors:
            self.metrics.invalid_records.labels(topic).inc(buffer.envelope_errors)
        if buffer.undecoded:
            self.metrics.undecoded.labels(topic).inc(buffer.undecoded)
        times = [t for t in buffer.columns["time"] if isinstance(t, datetime)]
        if times:
            lag = (datetime.now(UTC) - min(times)).total_seconds()
            self.metrics.write_lag.labels(topic).observe(max(0.0, lag))

    def _commit(self, consumer: Consumer, only: set[tuple[str, int]] | None = None) -> None:
        points = self.buffers.commit_points()
        if only is not None:
            points = {k: v for k, v in points.items() if k in only}
        if not points:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The files are durable; an uncommitted range is re-read after a rebalance and
            # lands in an overlapping file, which readers dedupe. So warn and carry on.
            log.warning("offset commit failed; will retry", extra={"error": str(exc)})
            return
        self.buffers.committed(points)
        for (topic, partition), offset in points.items():
            self.metrics.committed_offset.labels(topic, str(partition)).set(offset)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self.buffers.forget(keys)
        log.info("partitions assigned", extra={"partitions": _describe(keys)})

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        if not self._failed:
            self._write(self.buffers.open_buffers(keys))
            self._commit(consumer, only=keys)
        self.buffers.forget(keys)
        log.info("partitions revoked", extra={"partitions": _describe(keys)})

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        # Another member may own them already: drop the buffers, Kafka re-delivers.
        self.buffers.forget(keys)
        log.warning("partitions lost", extra={"partitions": _describe(keys)})


def _describe(keys: Sequence[tuple[str, int]] | set[tuple[str, int]]) -> list[str]:
    return sorted(f"{topic}[{partition}]" for topic, partition in keys)
