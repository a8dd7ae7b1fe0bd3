"""The per-consumer circuit breaker: closed, open, half-open, on a clock you can inject.

::

    closed --(failure-threshold consecutive retryable failures)--> open
    open   --(open-seconds pass)--------------------------------> half-open
    half-open: one probe call at a time, one every probe-interval
               probe answered (any status but a retryable one) --> closed
               probe failed (retryable status) -------------------> stays half-open

While the breaker is not closed the consumer loop pauses the consumer's partitions (open)
or lets only probes through (half-open), and events already in flight *wait* instead of
spending their in-memory retries: a consumer that is down is paused, never drained into its
retry topic or DLQ (DESIGN.md, Semantics: back-pressure).

An answer with a dead-letter status (INVALID_ARGUMENT, ...) is a verdict on the event, not
on the service: the server is up, so it counts as a success here.

The breaker is shared by the asyncio delivery code and the Kafka consumer threads of one
consumer service, so every method takes a lock.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from courier.broker.config import BreakerPolicy


class BreakerState(enum.Enum):
    """Where the breaker stands; ``value`` is the number exported as a gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class Admission:
    """The breaker's answer to "may I call now?": call, probe, or wait ``wait`` seconds."""

    allowed: bool
    probe: bool = False
    wait: float = 0.0


_CALL = Admission(allowed=True)
_PROBE = Admission(allowed=True, probe=True)

StateListener = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """Closed/open/half-open state of one consumer service.

    >>> clock = [0.0]
    >>> breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, open_seconds=5,
    ...                                        probe_interval=1), clock=lambda: clock[0])
    >>> breaker.record_failure(); breaker.record_failure(); breaker.state
    <BreakerState.OPEN: 2>
    >>> breaker.admit().wait
    5.0
    >>> clock[0] = 5.0; breaker.admit().probe
    True
    >>> breaker.record_success(probe=True); breaker.state
    <BreakerState.CLOSED: 0>
    """

    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._next_probe_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The state now (open turns half-open by itself once ``open-seconds`` have passed)."""
        with self._lock:
            return self._current(self._clock())

    def admit(self) -> Admission:
        """May a call go out now? Probes are handed out one at a time in half-open."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state is BreakerState.CLOSED:
                return _CALL
            if state is BreakerState.OPEN:
                return Admission(
                    allowed=False, wait=self._opened_at + self.policy.open_seconds - now
                )
            if self._probe_in_flight:
                return Admission(allowed=False, wait=self.policy.probe_interval)
            if now < self._next_probe_at:
                return Admission(allowed=False, wait=self._next_probe_at - now)
            self._probe_in_flight = True
            self._next_probe_at = now + self.policy.probe_interval
            return _PROBE

    def record_success(self, *, probe: bool = False) -> None:
        """A call was answered with a non-retryable status: the service is up; close."""
        with self._lock:
            if probe:
                self._probe_in_flight = False
            self._failures = 0
            self._set(BreakerState.CLOSED)

    def record_failure(self, *, probe: bool = False) -> None:
        """A call failed with a retryable status (or no answer in time)."""
        with self._lock:
            now = self._clock()
            if probe:
                self._probe_in_flight = False
            if not self.policy.enabled:
                return
            state = self._current(now)
            if state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.policy.failure_threshold:
                    self._opened_at = now
                    self._next_probe_at = now + self.policy.open_seconds
                    self._set(BreakerState.OPEN)

    def release_probe(self) -> None:
        """A probe was admitted but never made (cancelled): let the next one go."""
        with self._lock:
            self._probe_in_flight = False

    def _current(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.policy.open_seconds:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def _set(self, state: BreakerState) -> None:
        previous, self._state = self._state, state
        if previous is not state and self._on_change is not None:
            self._on_change(previous, state)
