"""``courier lake compact``: merge small files per topic partition and day, atomically.

Protocol, for each ``topic=T/date=D`` directory and Kafka partition P (safe while the sink
runs, and while queries run):

1. plan: group the partition's files of the day into runs of small (or overlapping)
   files, each run up to the target size; a big file is never merged and ends a run;
2. read the run's files, drop duplicate offsets, write the merged file
   ``T+P+<lowest offset>+<highest offset>.parquet`` durably (temp, fsync, rename, fsync
   the directory) -- if that name is one of the inputs it is replaced (the output holds
   every row the input held); if it belongs to a file that is not an input, the run is
   skipped;
3. check the merged file's row count, then delete the inputs and fsync the directory.

A crash after 2 and before 3 leaves the merged file and (some of) its inputs side by side:
their offset ranges overlap, so readers dedupe them and the next compaction merges them.
The sink never touches a file once written (except to replace it, after a crash, with the
same records), so it needs no coordination. Two compactions do: a lock file
(``<lake>/.courier-lake-compact.lock``, ``flock``) lets one run at a time.

Temporary files older than an hour are left by crashed writers and are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from courier.lake.buffers import MIB
from courier.lake.files import LakeFile, SegmentName, list_lake_files, temp_files
from courier.lake.parquet_writer import (
    SegmentExists,
    remove_durably,
    write_parquet_durably,
)
from courier.lake.ranges import overlap_groups

log = logging.getLogger("courier.lake.compact")

LOCK_NAME = ".courier-lake-compact.lock"


class CompactionBusy(RuntimeError):
    """Another compaction holds the lake's lock."""


@dataclass(frozen=True)
class CompactionPolicy:
    """Which files are merged, and how big merged files get."""

    target_bytes: int = 64 * MIB
    stale_temp_age: float = 3600.0


@dataclass
class CompactionReport:
    """What one compaction did."""

    runs_merged: int = 0
    files_in: int = 0
    files_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    temps_removed: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_in - self.rows_out


def compact_lake(root: Path, policy: CompactionPolicy | None = None) -> CompactionReport:
    """Compact every partition-day of the lake at ``root``; :class:`CompactionBusy` if locked."""
    policy = policy or CompactionPolicy()
    report = CompactionReport()
    with _lock(root):
        report.temps_removed = _remove_stale_temps(root, policy.stale_temp_age)
        files = list_lake_files(root)
        key = _partition_day
        for _, same in groupby(sorted(files, key=key), key=key):
            for run in plan_runs(list(same), policy.target_bytes):
                _merge(run, report)
    return report


def plan_runs(files: list[LakeFile], target_bytes: int) -> list[list[LakeFile]]:
    """The runs to merge among one partition-day's files (each run has two files or more).

    Overlapping files always go into one run together; a run grows over consecutive small
    groups until it reaches ``target_bytes``; a lone big file breaks a run.
    """
    runs: list[list[LakeFile]] = []
    current: list[LakeFile] = []
    size = 0
    for group in overlap_groups(files, lambda f: f.name):
        mergeable = len(group) > 1 or group[0].size < target_bytes
        if not mergeable:
            runs.append(current)
            current, size = [], 0
            continue
        current.extend(group)
        size += sum(f.size for f in group)
        if size >= target_bytes:
            runs.append(current)
            current, size = [], 0
    runs.append(current)
    return [run for run in runs if len(run) > 1]


def merge_tables(tables: list[pa.Table]) -> pa.Table:
    """The rows of ``tables`` sorted by offset, each offset once (the first copy kept)."""
    merged = pa.concat_tables(tables, promote_options="default").sort_by("offset")
    offsets = merged.column("offset").combine_chunks()
    if len(offsets) < 2:
        return merged
    changed = pc.not_equal(offsets.slice(1), offsets.slice(0, len(offsets) - 1))
    return merged.filter(pa.concat_arrays([pa.array([True]), changed]))


def _merge(run: list[LakeFile], report: CompactionReport) -> None:
    first = run[0]
    try:
        tables = [pq.ParquetFile(f.path).read() for f in run]
    except FileNotFoundError as exc:
        report.skipped.append(f"{first.path.parent}: input vanished ({exc.filename})")
        return
    merged = merge_tables(tables)
    offsets = merged.column("offset")
    name = SegmentName(
        first.name.topic,
        first.name.partition,
        int(offsets[0].as_py()),
        int(offsets[-1].as_py()),
    )
    target = first.path.parent / name.filename
    inputs = {f.path for f in run}
    try:
        write_parquet_durably(
            merged,
            target,
            replace=target in inputs,
            metadata={"courier.lake.writer": "compact"},
        )
    except SegmentExists:
        report.skipped.append(f"{target}: name taken by a file written meanwhile")
        return
    written = pq.read_metadata(target).num_rows
    if written != merged.num_rows:  # never delete inputs on a short write
        raise OSError(f"{target}: wrote {written} rows, expected {merged.num_rows}")
    remove_durably(sorted(inputs - {target}))
    report.runs_merged += 1
    report.files_in += len(run)
    report.files_out += 1
    report.rows_in += sum(t.num_rows for t in tables)
    report.rows_out += merged.num_rows
    log.info(
        "files merged",
        extra={"file": str(target), "inputs": len(run), "events": merged.num_rows},
    )


def _partition_day(f: LakeFile) -> tuple[str, int, str]:
    return (f.name.topic, f.name.partition, f.day.isoformat())


def _remove_stale_temps(root: Path, max_age: float) -> int:
    cutoff = time.time() - max_age
    stale = []
    for path in temp_files(root):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                stale.append(path)
    return len(remove_durably(stale))


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at {root}")
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompactionBusy(f"another compaction is running on {root}") from None
        yield
    finally:
        os.close(fd)
