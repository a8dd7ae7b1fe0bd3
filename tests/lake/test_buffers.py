"""Rolling and the commit rule: nothing is committed before it is in a durable file."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courier.lake.buffers import RollPolicy, SinkBuffers
from courier.lake.records import LakeRow
from courier.lake.schema import COLUMNS

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _row(topic: str, partition: int, offset: int, day: date = DAY1, size: int = 100) -> LakeRow:
    values: list[object] = [None] * len(COLUMNS)
    values[COLUMNS.index("topic")] = topic
    values[COLUMNS.index("partition")] = partition
    values[COLUMNS.index("offset")] = offset
    return LakeRow(tuple(values), day, size, True, True)


def _add(buffers: SinkBuffers, offset: int, day: date = DAY1, size: int = 100) -> object:
    return buffers.add(_row("t", 0, offset, day, size), "t", 0, offset)


def test_a_buffer_rolls_when_it_reaches_the_size() -> None:
    buffers = SinkBuffers(RollPolicy(max_bytes=300))
    assert _add(buffers, 0) is None
    assert _add(buffers, 1) is None
    full = _add(buffers, 2)
    assert full is not None and full.rows == 3 and (full.first, full.last) == (0, 2)  # type: ignore[attr-defined]


def test_a_buffer_rolls_when_it_is_old_enough() -> None:
    clock = Clock()
    buffers = SinkBuffers(RollPolicy(max_age=10), clock)
    _add(buffers, 0)
    clock.now = 5
    _add(buffers, 1, DAY2)
    clock.now = 10
    assert [(b.day, b.rows) for b in buffers.due()] == [(DAY1, 1)]
    clock.now = 15
    assert {b.day for b in buffers.due()} == {DAY1, DAY2}


def test_the_largest_buffers_roll_when_memory_is_over_budget() -> None:
    buffers = SinkBuffers(RollPolicy(max_total_bytes=1000))
    for offset in range(6):
        buffers.add(_row("big", 0, offset, size=150), "big", 0, offset)
    for offset in range(3):
        buffers.add(_row("small", 0, offset, size=100), "small", 0, offset)
    assert buffers.total_bytes == 1200
    assert [b.topic for b in buffers.due()] == ["big"]


def test_commits_wait_for_the_oldest_open_buffer_of_the_partition() -> None:
    buffers = SinkBuffers(RollPolicy())
    _add(buffers, 10, DAY1)
    _add(buffers, 11, DAY2)  # a late event of another day interleaves
    _add(buffers, 12, DAY1)
    assert buffers.commit_points() == {("t", 0): 10}
    day2 = next(b for b in buffers.open_buffers() if b.day == DAY2)
    buffers.written(day2)
    assert buffers.commit_points() == {("t", 0): 10}, "day 1's offsets 10 and 12 are not durable"
    day1 = next(b for b in buffers.open_buffers() if b.day == DAY1)
    buffers.written(day1)
    assert buffers.commit_points() == {("t", 0): 13}
    buffers.committed({("t", 0): 13})
    assert buffers.commit_points() == {}


def test_skipped_records_count_as_done() -> None:
    buffers = SinkBuffers(RollPolicy())
    buffers.skip("t", 0, 4)
    assert buffers.commit_points() == {("t", 0): 5}


def test_forgetting_a_partition_drops_its_buffers_and_bytes() -> None:
    buffers = SinkBuffers(RollPolicy())
    _add(buffers, 0)
    buffers.add(_row("u", 1, 0), "u", 1, 0)
    buffers.forget([("t", 0)])
    assert [(b.topic, b.partition) for b in buffers.open_buffers()] == [("u", 1)]
    assert buffers.total_bytes == 100
    assert buffers.commit_points() == {("u", 1): 0}


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RollPolicy(max_bytes=0)
    with pytest.raises(ValueError):
        RollPolicy(max_age=0)


steps = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.sampled_from([DAY1, DAY2]), st.booleans()),
        st.tuples(st.just("flush"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("commit"), st.just(DAY1), st.booleans()),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(steps, st.integers(min_value=0, max_value=10**12))
def test_every_offset_below_a_commit_point_is_durable_or_skipped(
    script: list[tuple[str, object, bool]], start: int
) -> None:
    """Random interleavings of records of two days, skips, rolls (any buffer) and commits."""
    buffers = SinkBuffers(RollPolicy())
    done: set[int] = set()
    offset = start
    committed = None
    for action, arg, flag in script:
        if action == "record":
            if flag:
                buffers.skip("t", 0, offset)
                done.add(offset)
            else:
                _add(buffers, offset, arg)  # type: ignore[arg-type]
            offset += 1
        elif action == "flush" and (open_buffers := buffers.open_buffers()):
            chosen = open_buffers[arg % len(open_buffers)]  # type: ignore[operator]
            done.update(chosen.columns["offset"])  # type: ignore[arg-type]
            buffers.written(chosen)
        elif action == "commit" and (points := buffers.commit_points()):
            point = points[("t", 0)]
            assert committed is None or point > committed, "commit points only move forward"
            missing = set(range(start, point)) - done
            assert not missing, f"offsets {sorted(missing)} committed but not durable"
            buffers.committed(points)
            committed = point
    if not buffers.open_buffers() and offset > start:
        assert buffers.commit_points().get(("t", 0), committed) == offset
