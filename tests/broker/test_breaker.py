"""CircuitBreaker on an injected clock: opening, probing, closing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import BreakerPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, **policy: object) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock = Clock()
    changes: list[str] = []
    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=threshold, open_seconds=5, probe_interval=1, **policy),
        clock=clock,
        on_change=lambda before, after: changes.append(after.name),
    )
    return breaker, clock, changes


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _, changes = make()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the count is of consecutive failures
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert changes == ["OPEN"]


def test_open_admits_nothing_then_one_probe_per_interval() -> None:
    breaker, clock, changes = make(threshold=1)
    breaker.record_failure()
    refused = breaker.admit()
    assert not refused.allowed and refused.wait == 5
    clock.now += 5
    probe = breaker.admit()
    assert probe.allowed and probe.probe
    assert not breaker.admit().allowed  # one probe at a time
    breaker.record_failure(probe=True)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.admit().allowed  # next probe only after the interval
    clock.now += 1
    assert breaker.admit().probe
    breaker.record_success(probe=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit().allowed and not breaker.admit().probe
    assert changes == ["OPEN", "HALF_OPEN", "CLOSED"]


def test_a_cancelled_probe_frees_the_slot() -> None:
    breaker, clock, _ = make(threshold=1)
    breaker.record_failure()
    clock.now += 5
    assert breaker.admit().probe
    breaker.release_probe()
    clock.now += 1
    assert breaker.admit().probe


def test_disabled_breaker_never_opens() -> None:
    breaker, _, _ = make(threshold=1, enabled=False)
    for _ in range(100):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


@given(st.lists(st.tuples(st.sampled_from(["ok", "fail", "admit"]), st.floats(0, 3))))
def test_never_more_than_one_probe_outstanding(steps: list[tuple[str, float]]) -> None:
    breaker, clock, _ = make(threshold=2)
    probes_out = 0
    for action, elapsed in steps:
        clock.now += elapsed
        if action == "admit":
            admission = breaker.admit()
            if admission.probe:
                probes_out += 1
                assert probes_out == 1
            if breaker.state is BreakerState.OPEN:
                assert not admission.allowed
        elif probes_out:
            probes_out -= 1
            (breaker.record_success if action == "ok" else breaker.record_failure)(probe=True)
        else:
            (breaker.record_success if action == "ok" else breaker.record_failure)()
