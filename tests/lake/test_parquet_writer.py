"""Durable writes: a file is either absent or complete; no temporary file survives."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from courier.lake.parquet_writer import (
    SegmentExists,
    make_dirs_durably,
    remove_durably,
    write_parquet_durably,
)


def _table(n: int) -> pa.Table:
    return pa.table({"offset": pa.array(range(n), pa.int64())})


def test_writes_creates_directories_and_keeps_metadata(tmp_path: Path) -> None:
    path = tmp_path / "topic=t" / "date=2026-01-01" / "f.parquet"
    size = write_parquet_durably(_table(5), path, metadata={"courier.lake.writer": "test"})
    assert size == path.stat().st_size > 0
    assert pq.read_table(path).num_rows == 5
    assert pq.read_schema(path).metadata[b"courier.lake.writer"] == b"test"
    assert os.listdir(path.parent) == ["f.parquet"]


def test_replace_swaps_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_parquet_durably(_table(3), path)
    write_parquet_durably(_table(8), path, replace=True)
    assert pq.read_table(path).num_rows == 8
    assert os.listdir(tmp_path) == ["f.parquet"]


def test_no_replace_leaves_the_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_parquet_durably(_table(3), path)
    with pytest.raises(SegmentExists):
        write_parquet_durably(_table(8), path, replace=False)
    assert pq.read_table(path).num_rows == 3
    assert os.listdir(tmp_path) == ["f.parquet"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"

    class Broken:
        schema = _table(1).schema

    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for a non-table
        write_parquet_durably(Broken(), path)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_remove_reports_what_it_removed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    assert remove_durably([a, b]) == [a]
    assert not a.exists()


def test_make_dirs_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y" / "z"
    make_dirs_durably(target)
    make_dirs_durably(target)
    assert target.is_dir()
