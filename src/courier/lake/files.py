"""Where lake files live and what they are called.

Layout (Hive-style partitions, one directory per topic and UTC day)::

    <lake>/topic=<topic>/date=<YYYY-MM-DD>/<topic>+<partition>+<first>+<last>.parquet

``first`` and ``last`` are the lowest and highest Kafka offsets in the file, zero-padded
to 20 digits so names sort by offset. A name is a function of the records it holds: a
sink that crashes after writing a file but before committing its offsets re-reads the
same records and, if it cuts them the same way, writes the same name again (an atomic
replace of identical content). When it cuts them differently the ranges overlap; readers
and compaction resolve that by ``(topic, partition, offset)`` (see :mod:`courier.lake.ranges`).

Files being written carry a temporary name (``.<name>.<random>.tmp``) that no reader
lists; they become visible only by an atomic rename once complete and fsynced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

OFFSET_DIGITS = 20
SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_FILE = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]{1,249})\+(?P<partition>\d+)\+(?P<first>\d+)\+(?P<last>\d+)\.parquet$"
)
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


class InvalidLakeName(ValueError):
    """A topic, partition or offset range cannot name a lake file."""


@dataclass(frozen=True, order=True)
class SegmentName:
    """The identity of a lake file: one topic partition's records from ``first`` to ``last``.

    >>> SegmentName("orders", 2, 100, 199).filename
    'orders+2+00000000000000000100+00000000000000000199.parquet'
    """

    topic: str
    partition: int
    first: int
    last: int

    def __post_init__(self) -> None:
        if not _TOPIC.match(self.topic) or self.topic in (".", ".."):
            raise InvalidLakeName(f"not a Kafka topic name: {self.topic!r}")
        if self.partition < 0:
            raise InvalidLakeName(f"negative partition {self.partition}")
        if not 0 <= self.first <= self.last < 10**OFFSET_DIGITS:
            raise InvalidLakeName(f"bad offset range {self.first}..{self.last}")

    @property
    def filename(self) -> str:
        return (
            f"{self.topic}+{self.partition}+{self.first:0{OFFSET_DIGITS}d}"
            f"+{self.last:0{OFFSET_DIGITS}d}{SUFFIX}"
        )

    @classmethod
    def parse(cls, filename: str) -> SegmentName | None:
        """The name's parts, or None if ``filename`` is not a lake file name."""
        match = _FILE.match(filename)
        if match is None:
            return None
        try:
            return cls(
                match["topic"], int(match["partition"]), int(match["first"]), int(match["last"])
            )
        except InvalidLakeName:
            return None

    def overlaps(self, other: SegmentName) -> bool:
        """Same topic partition and offset ranges that share at least one offset."""
        return (
            (self.topic, self.partition) == (other.topic, other.partition)
            and self.first <= other.last
            and other.first <= self.last
        )


def partition_dir(root: Path, topic: str, day: date) -> Path:
    """``<root>/topic=<topic>/date=<YYYY-MM-DD>``."""
    return root / f"topic={topic}" / f"date={day.isoformat()}"


def segment_path(root: Path, name: SegmentName, day: date) -> Path:
    """The final path of the file ``name`` holding records of UTC day ``day``."""
    return partition_dir(root, name.topic, day) / name.filename


@dataclass(frozen=True)
class LakeFile:
    """A complete lake file found on disk."""

    path: Path
    name: SegmentName
    day: date
    size: int

    @property
    def topic(self) -> str:
        return self.name.topic


def list_lake_files(root: Path) -> list[LakeFile]:
    """Every complete lake file under ``root``, sorted by topic, partition, offsets, day.

    Temporary files, foreign files and files that vanish while listing (compaction ran)
    are skipped; a file whose name does not match its ``topic=`` directory is skipped too.
    """
    found: list[LakeFile] = []
    for topic_dir in _subdirs(root, "topic="):
        topic = topic_dir.name.removeprefix("topic=")
        for date_dir in _subdirs(topic_dir, "date="):
            match = _DATE_DIR.match(date_dir.name)
            if match is None:
                continue
            try:
                day = date.fromisoformat(match[1])
            except ValueError:
                continue
            for entry in _scan(date_dir):
                name = SegmentName.parse(entry.name)
                if name is None or name.topic != topic or not entry.is_file():
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue
                found.append(LakeFile(Path(entry.path), name, day, size))
    found.sort(key=lambda f: (f.name, f.day))
    return found


def temp_files(root: Path) -> Iterator[Path]:
    """Temporary files left under the lake's partition directories (by crashed writers)."""
    for topic_dir in _subdirs(root, "topic="):
        for date_dir in _subdirs(topic_dir, "date="):
            for entry in _scan(date_dir):
                if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                    yield Path(entry.path)


def _subdirs(parent: Path, prefix: str) -> list[Path]:
    return sorted(
        Path(entry.path)
        for entry in _scan(parent)
        if entry.name.startswith(prefix) and entry.is_dir()
    )


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
