"""Which DLQ records were already replayed, kept in Kafka as consumer-group offsets.

Kafka cannot delete one record from a topic, so a replayed event stays in the DLQ. To keep
a second ``courier dlq replay`` from sending it again, the replay commits, for each DLQ
partition, to the group ``courier.<consumer>.dlq-replay``:

- the committed **offset** is the *floor*: every record below it was replayed;
- the commit **metadata** lists the replayed offsets above the floor as ranges
  (``courier-dlq-replay/1 12-15,20-20``), for replays that filtered some records out.

So records skipped by a filter stay eligible for a later replay, and records replayed
once are skipped until ``--from-beginning``. Kafka limits metadata to 4 KiB by default;
if the ranges outgrow it, the lowest ones are forgotten (those records may be replayed
again: a duplicate, never a loss).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

PREFIX = "courier-dlq-replay/1"
MAX_METADATA = 3800


@dataclass
class PartitionLedger:
    """Replayed offsets of one DLQ partition: all below ``floor``, plus ``ranges`` above it."""

    floor: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)  # inclusive, sorted, disjoint
    truncated: bool = False  # the last encode() had to forget some ranges

    def __contains__(self, offset: int) -> bool:
        if offset < self.floor:
            return True
        index = bisect.bisect_right(self.ranges, (offset, float("inf"))) - 1
        return index >= 0 and self.ranges[index][0] <= offset <= self.ranges[index][1]

    def add(self, offset: int) -> None:
        """Record ``offset`` as replayed."""
        if offset in self:
            return
        self.ranges.append((offset, offset))
        self._normalize()

    def _normalize(self) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(self.ranges):
            if end < self.floor:
                continue
            start = max(start, self.floor)
            if merged and start <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        if merged and merged[0][0] == self.floor:
            self.floor = merged.pop(0)[1] + 1
        self.ranges = merged

    def encode(self) -> str:
        """The commit metadata for this ledger (its floor is the committed offset)."""
        parts = [f"{start}-{end}" for start, end in self.ranges]
        self.truncated = False
        while parts and len(PREFIX) + 1 + len(",".join(parts)) > MAX_METADATA:
            parts.pop(0)
            self.truncated = True
        return f"{PREFIX} {','.join(parts)}" if parts else PREFIX

    @classmethod
    def decode(cls, committed: int, metadata: str | None) -> PartitionLedger:
        """Rebuild from a committed offset (negative: none) and its metadata.

        Metadata that is not ours (another tool committed to the group) is ignored: only
        the offset counts then.
        """
        ledger = cls(floor=max(committed, 0))
        text = metadata or ""
        if not text.startswith(PREFIX):
            return ledger
        for chunk in text[len(PREFIX) :].strip().split(","):
            start, sep, end = chunk.partition("-")
            if sep and start.isdigit() and end.isdigit() and int(start) <= int(end):
                ledger.ranges.append((int(start), int(end)))
        ledger._normalize()
        return ledger
