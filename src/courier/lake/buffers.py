"""The sink's open buffers, when they roll, and which offsets are safe to commit.

Records are buffered per ``(topic, partition, day)``: a file holds one topic partition's
records of one UTC day, the day of the event's ``ce_time``. A buffer rolls (becomes a
file) when its estimated size reaches ``max_bytes``, when it is ``max_age`` seconds old,
or -- largest first -- when all open buffers together pass ``max_total_bytes``.

Commit rule: a partition's offsets are committed up to the first offset of its oldest
open buffer, or, with no open buffer, up to the last record consumed + 1. So an offset is
committed only once every record below it is in a durable file (or was deliberately
skipped), whatever the order in which the partition's day buffers roll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from courier.lake.files import SegmentName
from courier.lake.records import LakeRow
from courier.lake.schema import COLUMNS, empty_columns, to_table

TopicPartition = tuple[str, int]

MIB = 1024 * 1024


@dataclass(frozen=True)
class RollPolicy:
    """When buffers become files."""

    max_bytes: int = 64 * MIB
    max_age: float = 60.0
    max_total_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_total_bytes <= 0:
            raise ValueError("roll sizes must be positive")
        if self.max_age <= 0:
            raise ValueError("roll age must be positive")


@dataclass
class SegmentBuffer:
    """Rows of one topic partition and day, waiting to become one file."""

    topic: str
    partition: int
    day: date
    opened_at: float
    first: int = -1
    last: int = -1
    size: int = 0
    rows: int = 0
    envelope_errors: int = 0
    undecoded: int = 0
    columns: dict[str, list[object]] = field(default_factory=empty_columns)

    def append(self, row: LakeRow, offset: int) -> None:
        for name, value in zip(COLUMNS, row.values, strict=True):
            self.columns[name].append(value)
        if self.rows == 0:
            self.first = offset
        self.last = offset
        self.rows += 1
        self.size += row.size
        self.envelope_errors += not row.envelope_ok
        self.undecoded += row.envelope_ok and not row.decoded

    @property
    def name(self) -> SegmentName:
        return SegmentName(self.topic, self.partition, self.first, self.last)

    def table(self) -> pa.Table:
        return to_table(self.columns)


@dataclass
class _PartitionState:
    next_offset: int | None = None  # last consumed + 1
    committed: int | None = None
    open: dict[date, SegmentBuffer] = field(default_factory=dict)


class SinkBuffers:
    """Open buffers for every assigned partition, and each partition's commit point."""

    def __init__(self, policy: RollPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._partitions: dict[TopicPartition, _PartitionState] = {}
        self._total = 0

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def buffered_rows(self) -> int:
        return sum(b.rows for b in self.open_buffers())

    def add(self, row: LakeRow, topic: str, partition: int, offset: int) -> SegmentBuffer | None:
        """Buffer ``row``; returns its buffer if that buffer is now due to roll by size."""
        state = self._state(topic, partition)
        state.next_offset = offset + 1
        buffer = state.open.get(row.day)
        if buffer is None:
            buffer = SegmentBuffer(topic, partition, row.day, self._clock())
            state.open[row.day] = buffer
        buffer.append(row, offset)
        self._total += row.size
        return buffer if buffer.size >= self.policy.max_bytes else None

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """A record consumed on purpose without storing it (it still counts as done)."""
        self._state(topic, partition).next_offset = offset + 1

    def due(self) -> list[SegmentBuffer]:
        """Buffers to roll now: old enough, or the largest while memory is over budget."""
        now = self._clock()
        buffers = self.open_buffers()
        chosen = [b for b in buffers if now - b.opened_at >= self.policy.max_age]
        total = self._total - sum(b.size for b in chosen)
        for buffer in sorted(buffers, key=lambda b: b.size, reverse=True):
            if total <= self.policy.max_total_bytes:
                break
            if buffer not in chosen:
                chosen.append(buffer)
                total -= buffer.size
        return chosen

    def written(self, buffer: SegmentBuffer) -> None:
        """``buffer`` is now a durable file: forget its rows."""
        state = self._partitions.get((buffer.topic, buffer.partition))
        if state is not None and state.open.get(buffer.day) is buffer:
            del state.open[buffer.day]
            self._total -= buffer.size

    def open_buffers(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> list[SegmentBuffer]:
        """Open buffers, of the given partitions or of all."""
        keys = self._partitions.keys() if partitions is None else partitions
        return [
            buffer
            for key in keys
            if (state := self._partitions.get(key)) is not None
            for buffer in state.open.values()
        ]

    def commit_points(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit, where it is ahead of the last one committed."""
        points = {}
        for key, state in self._partitions.items():
            if state.open:
                point = min(b.first for b in state.open.values())
            elif state.next_offset is not None:
                point = state.next_offset
            else:
                continue
            if state.committed is None or point > state.committed:
                points[key] = point
        return points

    def committed(self, points: dict[TopicPartition, int]) -> None:
        """Kafka accepted these commits."""
        for key, offset in points.items():
            if (state := self._partitions.get(key)) is not None:
                state.committed = offset

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the state (and any open buffers) of partitions no longer assigned."""
        for key in partitions:
            state = self._partitions.pop(key, None)
            if state is not None:
                self._total -= sum(b.size for b in state.open.values())

    def _state(self, topic: str, partition: int) -> _PartitionState:
        key = (topic, partition)
        state = self._partitions.get(key)
        if state is None:
            state = self._partitions[key] = _PartitionState()
        return state
