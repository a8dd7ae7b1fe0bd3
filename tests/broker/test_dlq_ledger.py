"""The replay ledger: which DLQ offsets were replayed, through a Kafka commit and back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courier.broker.dlq_ledger import MAX_METADATA, PREFIX, PartitionLedger


@given(st.sets(st.integers(min_value=0, max_value=500), max_size=120), st.integers(0, 50))
def test_ledger_holds_exactly_what_was_added_through_a_commit(added: set[int], floor: int) -> None:
    ledger = PartitionLedger(floor=floor)
    for offset in sorted(added, key=lambda o: (o * 7919) % 503):  # any order
        ledger.add(offset)
    metadata = ledger.encode()
    assert len(metadata) <= MAX_METADATA and not ledger.truncated
    restored = PartitionLedger.decode(ledger.floor, metadata)
    for offset in range(0, 560):
        expected = offset < floor or offset in added
        assert (offset in restored) is expected, offset
    # The floor absorbs the contiguous prefix, so the committed offset moves forward.
    run = floor
    while run in added:
        run += 1
    assert restored.floor == run


def test_filtered_replay_keeps_skipped_records_eligible() -> None:
    ledger = PartitionLedger()
    for offset in (0, 1, 2, 5, 9):
        ledger.add(offset)
    assert ledger.floor == 3
    assert ledger.encode() == f"{PREFIX} 5-5,9-9"
    assert 3 not in ledger and 4 not in ledger and 5 in ledger
    for offset in (3, 4):
        ledger.add(offset)
    assert ledger.floor == 6 and ledger.ranges == [(9, 9)]


def test_foreign_metadata_only_keeps_the_offset() -> None:
    ledger = PartitionLedger.decode(7, "written by some other tool")
    assert ledger.floor == 7 and ledger.ranges == []
    assert 6 in ledger and 7 not in ledger
    assert PartitionLedger.decode(-1001, None).floor == 0  # OFFSET_INVALID: nothing committed


def test_too_many_ranges_forget_the_lowest_ones() -> None:
    ledger = PartitionLedger()
    for offset in range(1, 4000, 2):  # 2000 isolated offsets
        ledger.add(offset)
    metadata = ledger.encode()
    assert ledger.truncated and len(metadata) <= MAX_METADATA
    restored = PartitionLedger.decode(ledger.floor, metadata)
    assert 3999 in restored and 1 not in restored  # forgetting means "may replay again"
