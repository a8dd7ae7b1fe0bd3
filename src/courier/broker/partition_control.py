"""The Kafka side of a consumer's partitions: pause and resume, give records back, commit.

:class:`PartitionControl` keeps the :class:`~courier.broker.partition_state.PartitionState`
of every assigned partition and is the only code that pauses, seeks or commits them:

- a partition is paused once ``batch-size`` + ``PREFETCH_SLACK`` of its events are not done
  (:attr:`~courier.broker.partition_state.PartitionState.full`), until fewer than
  ``batch-size`` + half the slack are; every partition while the consumer's breaker is open;
- librdkafka fetches ahead: records that still arrive for a paused partition are kept, up to
  ``PREFETCH_SLACK`` more, then given back: the partition is sought to the record, and
  records fetched after it are ignored until it comes again;
- a commit writes, for each partition that moved, the offset below which everything is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from courier.broker.metrics import BrokerMetrics
from courier.broker.partition_state import PartitionState

logger = logging.getLogger("courier.broker")


class PartitionControl:
    """Assigned partitions of one Kafka consumer, and pausing/seeking/committing them."""

    def __init__(self, kafka: Consumer, label: str, consumer: str, metrics: BrokerMetrics) -> None:
        self.kafka = kafka
        self.label = label
        self.consumer = consumer
        self.metrics = metrics
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.paused: set[tuple[str, int]] = set()
        self._give_back: list[TopicPartition] = []
        self._lag_labels: set[tuple[str, str, str]] = set()
        self._fresh: set[tuple[str, int]] = set()

    def add(self, part: PartitionState) -> None:
        """A newly assigned partition (kept if it is already known)."""
        if part.tp not in self.partitions:
            self.partitions[part.tp] = part
            # librdkafka keeps a partition's pause across a revoke and a new assignment: a
            # partition we paused, lost and got back must be resumed explicitly.
            self._fresh.add(part.tp)

    def admit(self, part: PartitionState, offset: int) -> bool:
        """May the record at ``offset`` be taken now? False: skip it (it comes again)."""
        if part.rewound_to is not None:
            if offset != part.rewound_to:
                return False  # fetched before the seek below
            part.rewound_to = None
        if part.overflowing:
            part.rewound_to = offset
            self._give_back.append(TopicPartition(part.topic, part.partition, offset))
            return False
        return True

    def seek_back(self) -> None:
        """Pause and seek the partitions that had records given back in this batch."""
        give_back, self._give_back = self._give_back, []
        if not give_back:
            return
        self.kafka.pause([TopicPartition(tp.topic, tp.partition) for tp in give_back])
        self.paused.update((tp.topic, tp.partition) for tp in give_back)
        for tp in give_back:
            self.kafka.seek(tp)

    def apply_pauses(self, breaker_open: bool) -> None:
        """Pause full partitions (all of them while the breaker is open), keep paused ones
        paused until they are low, resume the rest."""
        wanted = {
            tp
            for tp, part in self.partitions.items()
            if breaker_open or part.full or (tp in self.paused and not part.low)
        }
        pause, resume = wanted - self.paused, (self.paused | self._fresh) - wanted
        self._fresh.clear()
        if pause:
            self.kafka.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            self.kafka.resume([TopicPartition(t, p) for t, p in resume])
        self.paused = wanted

    def pause_all(self) -> None:
        """Stop fetching every partition (on stop)."""
        if self.partitions:
            self.kafka.pause([TopicPartition(t, p) for t, p in self.partitions])
            self.paused = set(self.partitions)

    @property
    def all_paused(self) -> bool:
        return len(self.paused) >= len(self.partitions)

    def commit(
        self, parts: Iterable[PartitionState] | None = None, *, asynchronous: bool = False
    ) -> None:
        """Commit the done offsets of ``parts`` (default: all) that moved.

        The periodic commit is asynchronous, so the loop never waits for the group
        coordinator (a failure is reported to :meth:`committed` and retried next time); the
        commits on revoke and on stop wait for the answer.
        """
        moved: list[tuple[PartitionState, int]] = []
        for part in self.partitions.values() if parts is None else parts:
            offset = part.tracker.committable()
            if offset is not None and offset != part.last_committed:
                moved.append((part, offset))
        if not moved:
            return
        try:
            offsets = [TopicPartition(p.topic, p.partition, o) for p, o in moved]
            if asynchronous:
                self.kafka.commit(offsets=offsets, asynchronous=True)
            else:
                self.kafka.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "offset commit failed; trying again",
                extra={"consumer": self.label, "error": str(exc)},
            )
            return
        for part, offset in moved:
            part.last_committed = offset
        self.metrics.commits.labels(self.consumer).inc(len(moved))

    def committed(self, error: KafkaError | None, offsets: list[TopicPartition]) -> None:
        """The answer to an asynchronous commit (librdkafka's ``on_commit``)."""
        failed = [tp for tp in offsets if tp.error is not None]
        if error is None and not failed:
            return
        for tp in offsets:
            part = self.partitions.get((tp.topic, tp.partition))
            if part is not None and (error is not None or tp.error is not None):
                part.last_committed = None  # commit it again next time
        logger.warning(
            "offset commit failed; trying again",
            extra={"consumer": self.label, "error": str(error or failed[0].error)},
        )

    def update_lag(self) -> None:
        """Set the lag gauge: high watermark (as last fetched) minus the committable offset."""
        for part in self.partitions.values():
            done = part.tracker.committable()
            if done is None:
                done = part.last_committed
            try:
                _, high = self.kafka.get_watermark_offsets(
                    TopicPartition(part.topic, part.partition), cached=True
                )
            except KafkaException:
                continue
            if done is not None and high >= 0:
                labels = (self.consumer, part.topic, str(part.partition))
                self._lag_labels.add(labels)
                self.metrics.lag.labels(*labels).set(max(0, high - done))

    def forget(self, part: PartitionState) -> None:
        """The partition is no longer ours: drop its state and its lag series."""
        part.revoked = True
        self.partitions.pop(part.tp, None)
        self.paused.discard(part.tp)
        self._fresh.discard(part.tp)
        labels = (self.consumer, part.topic, str(part.partition))
        if labels in self._lag_labels:
            self._lag_labels.discard(labels)
            self.metrics.lag.remove(*labels)
