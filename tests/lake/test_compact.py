"""Compaction: small files merged per partition-day, overlaps resolved, counts unchanged."""

from __future__ import annotations

import fcntl
import os
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.lake.compact import (
    LOCK_NAME,
    CompactionBusy,
    CompactionPolicy,
    compact_lake,
    plan_runs,
)
from courier.lake.files import LakeFile, SegmentName, list_lake_files
from courier.lake.query import query_lake

from .lake_helpers import write_segment

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)


def _counts(root: Path) -> tuple[int, int]:
    rows = list(
        query_lake(
            root, 'select count(*), count(distinct (topic, partition, "offset")) from events'
        ).rows
    )
    return rows[0]  # type: ignore[return-value]


def _names(root: Path) -> list[tuple[str, int, int, int, date]]:
    return [
        (f.name.topic, f.name.partition, f.name.first, f.name.last, f.day)
        for f in list_lake_files(root)
    ]


def test_small_files_of_one_partition_day_become_one(tmp_path: Path) -> None:
    for start in range(0, 100, 10):
        write_segment(tmp_path, "t", 0, range(start, start + 10), DAY1)
    write_segment(tmp_path, "t", 0, range(100, 110), DAY2)  # another day: kept apart
    write_segment(tmp_path, "t", 1, range(0, 10), DAY1)  # another partition, alone: untouched
    report = compact_lake(tmp_path)
    assert (report.files_in, report.files_out, report.rows_out) == (10, 1, 100)
    assert _names(tmp_path) == [
        ("t", 0, 0, 99, DAY1), ("t", 0, 100, 109, DAY2), ("t", 1, 0, 9, DAY1),
    ]  # fmt: skip
    assert _counts(tmp_path) == (120, 120)
    merged = list_lake_files(tmp_path)[0].path
    assert pq.read_schema(merged).metadata[b"courier.lake.writer"] == b"compact"
    assert pq.read_table(merged).column("offset").to_pylist() == list(range(100))


def test_overlapping_files_are_merged_without_duplicates(tmp_path: Path) -> None:
    write_segment(tmp_path, "t", 0, range(0, 100))
    write_segment(tmp_path, "t", 0, range(0, 60))
    write_segment(tmp_path, "t", 0, range(60, 150))
    assert _counts(tmp_path) == (150, 150)
    report = compact_lake(tmp_path)
    assert report.duplicates_dropped == 100
    assert _names(tmp_path) == [("t", 0, 0, 149, DAY1)]
    assert _counts(tmp_path) == (150, 150)


def test_an_output_named_like_an_input_replaces_it(tmp_path: Path) -> None:
    write_segment(tmp_path, "t", 0, range(0, 50))
    write_segment(tmp_path, "t", 0, range(10, 20))
    compact_lake(tmp_path)
    assert _names(tmp_path) == [("t", 0, 0, 49, DAY1)]
    assert _counts(tmp_path) == (50, 50)


def test_a_crash_between_writing_and_deleting_is_resolved(tmp_path: Path) -> None:
    """The merged file and its inputs side by side, as a kill after step 2 leaves them."""
    for start in range(0, 30, 10):
        write_segment(tmp_path, "t", 0, range(start, start + 10))
    write_segment(tmp_path, "t", 0, range(0, 30))  # the "merged" file, inputs not yet deleted
    assert _counts(tmp_path) == (30, 30)
    compact_lake(tmp_path)
    assert _names(tmp_path) == [("t", 0, 0, 29, DAY1)]
    assert _counts(tmp_path) == (30, 30)


def test_big_files_are_left_alone_and_break_runs(tmp_path: Path) -> None:
    write_segment(tmp_path, "t", 0, range(0, 5))
    write_segment(tmp_path, "t", 0, range(5, 2000))
    write_segment(tmp_path, "t", 0, range(2000, 2005))
    big = next(f.size for f in list_lake_files(tmp_path) if f.name.first == 5)
    report = compact_lake(tmp_path, CompactionPolicy(target_bytes=big))
    assert report.runs_merged == 0
    assert len(list_lake_files(tmp_path)) == 3


def test_a_second_compaction_is_refused_while_one_runs(tmp_path: Path) -> None:
    write_segment(tmp_path, "t", 0, range(5))
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CompactionBusy):
            compact_lake(tmp_path)
    finally:
        os.close(fd)
    compact_lake(tmp_path)


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    path = write_segment(tmp_path, "t", 0, range(5))
    stale = path.parent / f".{path.name}.dead.tmp"
    fresh = path.parent / f".{path.name}.live.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert compact_lake(tmp_path).temps_removed == 1
    assert not stale.exists() and fresh.exists()


def _file(first: int, last: int, size: int) -> LakeFile:
    return LakeFile(Path(f"/x/{first}-{last}"), SegmentName("t", 0, first, last), DAY1, size)


files = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 30), st.integers(1, 100)).map(
        lambda t: _file(t[0], t[0] + t[1], t[2])
    ),
    max_size=25,
    unique_by=lambda f: f.name,
)


@given(files, st.integers(1, 300))
def test_runs_keep_overlapping_files_together_and_skip_big_ones(
    candidates: list[LakeFile], target: int
) -> None:
    runs = plan_runs(candidates, target)
    in_runs = [f for run in runs for f in run]
    assert len(in_runs) == len(set(in_runs)), "a file is in one run at most"
    for run in runs:
        assert len(run) > 1
    for f in candidates:
        partners = [g for g in candidates if g is not f and g.name.overlaps(f.name)]
        if partners and f in in_runs:
            run = next(r for r in runs if f in r)
            assert all(p in run for p in partners), "overlapping files merge together"
        if not partners and f.size >= target:
            assert f not in in_runs, "a big file with no overlap is never rewritten"
        if partners:
            assert f in in_runs, "every overlap gets resolved"
