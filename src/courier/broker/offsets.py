"""Which offset of a partition may be committed while events complete out of order.

Events of one partition are delivered concurrently (up to ``batch-size`` at once) and finish
in any order. Kafka commits one number per partition -- "everything below this is done" --
so the committable offset is the first offset that is not done yet: the lowest offset still
in flight, or one past the last offset seen when nothing is in flight.

"Done" means delivered to every method, or written to the retry or DLQ topic *and
acknowledged by Kafka*: the caller completes an offset only after that acknowledgement, so
an offset is never committed past an un-acked hand-off.

Offsets are not assumed contiguous (transaction markers and compaction leave gaps): the
tracker only compares the offsets it has seen, which gives the same answer as "lowest
contiguous completed offset + 1" over the records actually read.
"""

from __future__ import annotations

import heapq


class OffsetTracker:
    """In-flight and completed offsets of one partition, and the offset safe to commit.

    >>> tracker = OffsetTracker()
    >>> for offset in (10, 11, 12):
    ...     tracker.start(offset)
    >>> tracker.complete(11); tracker.committable()
    10
    >>> tracker.complete(10); tracker.committable()
    12
    >>> tracker.complete(12); tracker.committable()
    13
    """

    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        # Min-heap over in-flight offsets; completed ones are dropped lazily from the top.
        self._heap: list[int] = []
        self._highest_seen: int | None = None

    def start(self, offset: int) -> None:
        """Offset ``offset`` was read and its delivery begins; offsets must increase."""
        if self._highest_seen is not None and offset <= self._highest_seen:
            raise ValueError(
                f"offset {offset} is not above the last one started ({self._highest_seen})"
            )
        self._highest_seen = offset
        self._in_flight.add(offset)
        heapq.heappush(self._heap, offset)

    def complete(self, offset: int) -> None:
        """Offset ``offset`` is done (delivered, or its hand-off acknowledged by Kafka)."""
        try:
            self._in_flight.remove(offset)
        except KeyError:
            raise ValueError(f"offset {offset} is not in flight") from None
        while self._heap and self._heap[0] not in self._in_flight:
            heapq.heappop(self._heap)

    def committable(self) -> int | None:
        """The offset to commit (the next one to read after a restart), or None if none seen."""
        if self._heap:
            return self._heap[0]
        return None if self._highest_seen is None else self._highest_seen + 1

    def is_in_flight(self, offset: int) -> bool:
        """True while ``offset`` has started and not completed."""
        return offset in self._in_flight

    @property
    def in_flight(self) -> int:
        """How many offsets have started and not completed."""
        return len(self._in_flight)
