"""OffsetTracker: the committable offset never passes an offset that is not done."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.broker.offsets import OffsetTracker


@st.composite
def offsets_and_order(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    gaps = draw(st.lists(st.integers(1, 3), min_size=1, max_size=60))
    start = draw(st.integers(0, 1000))
    offsets = [start + sum(gaps[: i + 1]) for i in range(len(gaps))]
    done = draw(st.permutations(offsets))
    count = draw(st.integers(0, len(offsets)))
    return offsets, list(done[:count])


@given(offsets_and_order())
def test_committable_is_the_first_offset_not_done(case: tuple[list[int], list[int]]) -> None:
    offsets, done = case
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.start(offset)
    completed: set[int] = set()
    for offset in done:
        tracker.complete(offset)
        completed.add(offset)
        pending = [o for o in offsets if o not in completed]
        expected = pending[0] if pending else offsets[-1] + 1
        assert tracker.committable() == expected
        # Nothing at or above the committable offset is assumed done...
        assert all(o in completed for o in offsets if o < expected)
    assert tracker.in_flight == len(offsets) - len(done)


@given(offsets_and_order())
def test_interleaved_reads_and_completions(case: tuple[list[int], list[int]]) -> None:
    """Reads keep coming while earlier offsets complete; the answer is the same."""
    offsets, done = case
    tracker = OffsetTracker()
    started: list[int] = []
    for offset in offsets:
        tracker.start(offset)
        started.append(offset)
        for finished in [d for d in done if d in started and tracker.is_in_flight(d)]:
            tracker.complete(finished)
        pending = [o for o in started if tracker.is_in_flight(o)]
        assert tracker.committable() == (pending[0] if pending else started[-1] + 1)


def test_nothing_seen_means_nothing_to_commit() -> None:
    assert OffsetTracker().committable() is None


def test_offsets_must_increase_and_complete_once() -> None:
    tracker = OffsetTracker()
    tracker.start(5)
    with pytest.raises(ValueError):
        tracker.start(5)
    tracker.complete(5)
    with pytest.raises(ValueError):
        tracker.complete(5)
    assert tracker.committable() == 6
