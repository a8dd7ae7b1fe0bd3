"""Which lake files may hold the same record, so readers dedupe only where they must.

Two files can hold the same ``(topic, partition, offset)`` only if their offset ranges
overlap: after a crash between a file's rename and its offset commit (the sink re-reads
and cuts the records differently), or while a compaction has written its merged file but
not yet deleted its inputs. Late events make ranges of one partition interleave across
``date=`` directories too; those share no record but are treated the same way (it is
cheap, and the reader stays simple).

:func:`overlap_groups` splits files into the connected groups of the "ranges overlap"
relation: a file alone in its group is read as is; a group of several is read with a
row-level dedupe on ``(topic, partition, offset)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby
from typing import TypeVar

from courier.lake.files import SegmentName

T = TypeVar("T")


def overlap_groups(items: Iterable[T], name_of: Callable[[T], SegmentName]) -> list[list[T]]:
    """Group ``items`` so that items whose names overlap, directly or through others, share one.

    Groups come sorted by (topic, partition, first offset), their members by first offset.

    >>> names = [SegmentName("t", 0, 0, 9), SegmentName("t", 0, 5, 20), SegmentName("t", 0, 21, 30)]
    >>> [[n.first for n in g] for g in overlap_groups(names, lambda n: n)]
    [[0, 5], [21]]
    """
    ordered = sorted(items, key=lambda item: _sort_key(name_of(item)))
    groups: list[list[T]] = []
    for _, same_partition in groupby(ordered, key=lambda i: _partition(name_of(i))):
        current: list[T] = []
        reach = -1
        for item in same_partition:
            name = name_of(item)
            if current and name.first > reach:
                groups.append(current)
                current = []
            current.append(item)
            reach = max(reach, name.last) if len(current) > 1 else name.last
        if current:
            groups.append(current)
    return groups


def _partition(name: SegmentName) -> tuple[str, int]:
    return (name.topic, name.partition)


def _sort_key(name: SegmentName) -> tuple[str, int, int, int]:
    return (name.topic, name.partition, name.first, name.last)
