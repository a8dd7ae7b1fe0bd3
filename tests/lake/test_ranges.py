"""Overlap groups: files that may share a record end up together, and only those."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courier.lake.files import SegmentName
from courier.lake.ranges import overlap_groups

ranges = st.tuples(st.integers(0, 200), st.integers(0, 40)).map(lambda r: (r[0], r[0] + r[1]))
names = st.lists(
    st.builds(
        lambda topic, partition, r: SegmentName(topic, partition, r[0], r[1]),
        st.sampled_from(["a", "b"]),
        st.integers(0, 2),
        ranges,
    ),
    max_size=30,
)


def _components(items: list[SegmentName]) -> set[frozenset[int]]:
    """Connected components of the overlap relation, by brute force (union-find)."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, x in enumerate(items):
        for j, y in enumerate(items):
            if x.overlaps(y):
                parent[root(i)] = root(j)
    groups: dict[int, set[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), set()).add(i)
    return {frozenset(g) for g in groups.values()}


@given(names)
def test_groups_are_the_connected_components_of_overlap(items: list[SegmentName]) -> None:
    indexed = list(enumerate(items))
    groups = overlap_groups(indexed, lambda pair: pair[1])
    assert {frozenset(i for i, _ in group) for group in groups} == _components(items)


@given(names)
def test_groups_are_sorted_and_hold_one_partition(items: list[SegmentName]) -> None:
    groups = overlap_groups(items, lambda n: n)
    for group in groups:
        assert len({(n.topic, n.partition) for n in group}) == 1
        assert [n.first for n in group] == sorted(n.first for n in group)
    firsts = [(g[0].topic, g[0].partition, g[0].first) for g in groups]
    assert firsts == sorted(firsts)


def test_adjacent_ranges_do_not_overlap_but_a_shared_offset_does() -> None:
    a, b, c = SegmentName("t", 0, 0, 9), SegmentName("t", 0, 10, 19), SegmentName("t", 0, 19, 25)
    assert overlap_groups([c, a, b], lambda n: n) == [[a], [b, c]]


def test_a_long_range_joins_everything_it_spans() -> None:
    big = SegmentName("t", 0, 0, 100)
    small = [SegmentName("t", 0, i, i + 5) for i in range(10, 90, 20)]
    after = SegmentName("t", 0, 101, 110)
    assert overlap_groups([*small, after, big], lambda n: n) == [[big, *small], [after]]
