"""Lake file names: derived from topic, partition and offsets; parsed back exactly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.lake.files import (
    InvalidLakeName,
    SegmentName,
    list_lake_files,
    partition_dir,
    segment_path,
    temp_files,
)

topics = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
    max_size=60,
).filter(lambda t: t not in (".", ".."))
offsets = st.integers(min_value=0, max_value=10**20 - 1)


@given(topics, st.integers(0, 100_000), offsets, offsets)
def test_a_name_parses_back_to_itself(topic: str, partition: int, a: int, b: int) -> None:
    name = SegmentName(topic, partition, min(a, b), max(a, b))
    assert SegmentName.parse(name.filename) == name


@given(st.lists(st.tuples(offsets, offsets), min_size=2, max_size=20))
def test_names_sort_by_offset(ranges: list[tuple[int, int]]) -> None:
    names = [SegmentName("t", 0, min(a, b), max(a, b)) for a, b in ranges]
    assert sorted(names, key=lambda n: n.filename) == sorted(names, key=lambda n: (n.first, n.last))


def test_the_name_spells_topic_partition_and_offsets() -> None:
    name = SegmentName("packages.delivered", 3, 1200, 1299)
    assert name.filename == (
        "packages.delivered+3+00000000000000001200+00000000000000001299.parquet"
    )
    path = segment_path(Path("/lake"), name, date(2026, 1, 2))
    assert path == Path("/lake/topic=packages.delivered/date=2026-01-02/" + name.filename)


@pytest.mark.parametrize(
    ("topic", "partition", "first", "last"),
    [("", 0, 0, 0), ("a/b", 0, 0, 0), ("a+b", 0, 0, 0), ("..", 0, 0, 0), ("t", -1, 0, 0),
     ("t", 0, 5, 4), ("t", 0, -1, 3), ("t", 0, 0, 10**20)],
)  # fmt: skip
def test_impossible_names_are_refused(topic: str, partition: int, first: int, last: int) -> None:
    with pytest.raises(InvalidLakeName):
        SegmentName(topic, partition, first, last)


@pytest.mark.parametrize(
    "filename",
    ["t+0+1+2.parquet.tmp", ".t+0+1+2.parquet.abcd.tmp", "t+0+1.parquet", "t+x+1+2.parquet",
     "t+0+5+4.parquet", "part-0001.parquet", "t+0+1+2.csv"],
)  # fmt: skip
def test_foreign_and_temporary_names_are_not_lake_files(filename: str) -> None:
    assert SegmentName.parse(filename) is None


def test_overlap_needs_the_same_partition_and_a_shared_offset() -> None:
    a = SegmentName("t", 0, 10, 20)
    assert a.overlaps(SegmentName("t", 0, 20, 30))
    assert a.overlaps(SegmentName("t", 0, 0, 10))
    assert a.overlaps(SegmentName("t", 0, 12, 13))
    assert not a.overlaps(SegmentName("t", 0, 21, 30))
    assert not a.overlaps(SegmentName("t", 1, 10, 20))
    assert not a.overlaps(SegmentName("u", 0, 10, 20))


def test_listing_finds_complete_files_only(tmp_path: Path) -> None:
    day = date(2026, 1, 2)
    good = SegmentName("orders", 0, 0, 9)
    directory = partition_dir(tmp_path, "orders", day)
    directory.mkdir(parents=True)
    (directory / good.filename).write_bytes(b"x" * 7)
    (directory / f".{good.filename}.1234.tmp").write_bytes(b"partial")
    (directory / "notes.txt").write_text("hello")
    # A file whose name names another topic than its directory is not this topic's.
    (directory / SegmentName("other", 0, 0, 1).filename).write_bytes(b"")
    (tmp_path / "topic=orders" / "date=not-a-date").mkdir()
    (tmp_path / "elsewhere").mkdir()

    files = list_lake_files(tmp_path)

    assert [(f.name, f.day, f.size) for f in files] == [(good, day, 7)]
    assert [p.name for p in temp_files(tmp_path)] == [f".{good.filename}.1234.tmp"]


def test_listing_a_missing_lake_is_empty(tmp_path: Path) -> None:
    assert list_lake_files(tmp_path / "nothing") == []
