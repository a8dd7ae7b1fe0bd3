"""What the broker knows about one assigned partition: events in flight and their order.

Every record read from a partition becomes a :class:`TrackedEvent` that stays tracked until
it is done (delivered, or handed off and acknowledged). At most ``batch-size`` events of a
partition are being delivered at once; the next ``batch-size`` wait in memory, ready to start
as soon as a call ends, so that a free call slot never waits for a fetch. ``batch-size`` +
``PREFETCH_SLACK`` tracked events pause the partition until fewer than ``batch-size`` + half
the slack are left (pausing less often than every event keeps librdkafka's fetching smooth).

``ordering: key`` keeps a queue per key so that the next event of a key starts only when the
previous one has finished delivery; events without a key, and other keys, flow meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from courier.broker.delivery import DeliveryRequest
from courier.broker.handoff import SourceRecord
from courier.broker.offsets import OffsetTracker
from courier.broker.retry_headers import RetryState
from courier.events import EventEnvelope

PREFETCH_SLACK = 1000
"""Records of a paused partition kept in memory before they are given back (sought to);
librdkafka is told to prefetch no more than this (``queued.min.messages``)."""


@dataclass(eq=False)
class TrackedEvent:
    """One record of a partition, from the moment it is read until it is done."""

    partition: PartitionState
    source: SourceRecord
    envelope: EventEnvelope | None
    state: RetryState | None
    methods: tuple[str, ...]
    request: DeliveryRequest | None
    ordering_key: bytes | None = None
    read_at: float = field(default_factory=time.monotonic)
    running: bool = False
    """Its delivery task is on the gRPC loop."""
    pending_writes: int = 0
    """Retry/DLQ records produced and not yet acknowledged by Kafka."""
    task: asyncio.Task[Any] | None = None

    @property
    def offset(self) -> int:
        return self.source.offset


class PartitionState:
    """One assigned partition: its offset tracker, tracked events and per-key queues."""

    def __init__(self, topic: str, partition: int, window: int, *, is_retry: bool) -> None:
        self.topic = topic
        self.partition = partition
        self.window = window
        self.is_retry = is_retry
        self.tracker = OffsetTracker()
        self.events: dict[int, TrackedEvent] = {}
        self.revoked = False
        self.releasing = False
        """Being given up (revoke, stop): its queued events must not start."""
        self.last_committed: int | None = None
        self.rewound_to: int | None = None
        """Offset sought back to because the partition was overflowing; later records are
        stale."""
        self.calls = 0
        """Events of this partition whose delivery task is running (at most ``window``)."""
        self.ready: deque[TrackedEvent] = deque()
        """Events that may start as soon as a call slot frees up, in order."""
        self._key_queues: dict[bytes, deque[TrackedEvent]] = {}

    @property
    def tp(self) -> tuple[str, int]:
        return self.topic, self.partition

    @property
    def full(self) -> bool:
        """``batch-size`` + ``PREFETCH_SLACK`` events not done: stop fetching for now."""
        return self.tracker.in_flight >= self.window + PREFETCH_SLACK

    @property
    def low(self) -> bool:
        """Half of the slack used again: a paused partition may fetch again."""
        return self.tracker.in_flight < self.window + PREFETCH_SLACK // 2

    @property
    def overflowing(self) -> bool:
        """Far past full (librdkafka had fetched ahead): give further records back."""
        return self.tracker.in_flight >= self.window + 2 * PREFETCH_SLACK

    @property
    def call_slot_free(self) -> bool:
        """Fewer than ``batch-size`` of its events are being delivered right now."""
        return self.calls < self.window

    def track(self, event: TrackedEvent) -> None:
        """``event`` was read: it occupies a window slot until :meth:`done`."""
        self.tracker.start(event.offset)
        self.events[event.offset] = event

    def done(self, event: TrackedEvent) -> None:
        """``event`` is done: its offset may be committed once everything below it is."""
        self.tracker.complete(event.offset)
        del self.events[event.offset]

    def claim_key(self, event: TrackedEvent) -> bool:
        """For ``ordering: key``: True if ``event`` may start now, else it is queued."""
        key = event.ordering_key
        if key is None:
            return True
        queue = self._key_queues.get(key)
        if queue is None:
            self._key_queues[key] = deque()
            return True
        queue.append(event)
        return False

    def release_key(self, event: TrackedEvent) -> TrackedEvent | None:
        """``event`` finished delivery: the next queued event of its key, if any, may start."""
        key = event.ordering_key
        if key is None:
            return None
        queue = self._key_queues.get(key)
        if not queue:
            self._key_queues.pop(key, None)
            return None
        return queue.popleft()

    def running(self) -> list[TrackedEvent]:
        """Events whose delivery is under way or whose hand-off awaits Kafka's ack."""
        return [e for e in self.events.values() if e.running or e.pending_writes]
