"""LsnTracker never confirms past a record Kafka has not acknowledged."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from courier.relay.logical import LsnTracker


def test_confirms_only_the_acknowledged_prefix() -> None:
    tracker = LsnTracker()
    first, second = tracker.begin(), tracker.begin()
    tracker.sent(first)
    tracker.commit(first, 100)
    tracker.sent(second)
    tracker.sent(second)
    tracker.commit(second, 200)
    tracker.acked(second)
    tracker.acked(second)
    assert tracker.confirmable() == 0  # `first` still waits for Kafka
    tracker.acked(first)
    assert tracker.confirmable() == 200
    assert tracker.open_transactions == 0


def test_empty_committed_transaction_is_confirmable_at_once() -> None:
    tracker = LsnTracker()
    tracker.commit(tracker.begin(), 50)
    assert tracker.confirmable() == 50


def test_an_open_transaction_holds_the_position() -> None:
    tracker = LsnTracker()
    tracker.commit(tracker.begin(), 50)
    tracker.begin()  # receiving, no commit yet
    assert tracker.confirmable() == 50


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=12), st.randoms())
def test_random_ack_orders(sizes: list[int], rnd: random.Random) -> None:
    tracker = LsnTracker()
    transactions = []
    acks = []
    for index, size in enumerate(sizes):
        txn = tracker.begin()
        for _ in range(size):
            tracker.sent(txn)
            acks.append(index)
        tracker.commit(txn, (index + 1) * 10)
        transactions.append(txn)
    rnd.shuffle(acks)
    remaining = list(sizes)
    last = 0
    for index in acks:
        tracker.acked(transactions[index])
        remaining[index] -= 1
        confirmed = tracker.confirmable()
        # Expected: end of the longest prefix with nothing outstanding.
        prefix = 0
        while prefix < len(sizes) and remaining[prefix] == 0:
            prefix += 1
        assert confirmed == max(last, prefix * 10)
        assert confirmed >= last
        last = confirmed
    assert tracker.confirmable() == len(sizes) * 10
