"""Recent failed delivery calls per consumer, kept in memory for the admin page.

:class:`ObservedDeliverer` is the broker's :class:`~courier.broker.delivery.ConsumerDeliverer`
with one addition: every gRPC call that is not answered OK is put in a :class:`FailureLog`,
a bounded ring buffer per consumer. Calls are recorded, not outcomes: while a consumer's
breaker is open its events wait inside the deliverer, so only the failed calls (first calls,
in-memory retries, probes) show what is going on.

Successful calls cost one comparison; a failure costs a lock and a deque append. Nothing
here decodes or keeps payload bytes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from courier.broker.delivery import ConsumerDeliverer, DeliveryRequest

DEFAULT_CAPACITY = 50
"""Failures kept per consumer; older ones are dropped."""


@dataclass(frozen=True)
class FailedCall:
    """One delivery call that was not answered OK."""

    consumer: str
    event_id: str
    event_type: str
    method: str
    status: str
    details: str
    attempt: int
    at: float
    """Wall-clock time of the answer, epoch seconds."""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the admin API's ``failures`` entries)."""
        return asdict(self)


class FailureLog:
    """The last ``capacity`` failed calls of each consumer; safe to use from any thread.

    >>> log = FailureLog(capacity=2)
    >>> for n in range(3):
    ...     log.record(FailedCall("a", str(n), "t", "/s/M", "UNAVAILABLE", "", 1, float(n)))
    >>> [f.event_id for f in log.recent("a")]
    ['2', '1']
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._by_consumer: dict[str, deque[FailedCall]] = {}
        self._totals: dict[str, int] = {}

    def record(self, failure: FailedCall) -> None:
        """Keep ``failure`` (dropping the consumer's oldest one when full)."""
        with self._lock:
            ring = self._by_consumer.get(failure.consumer)
            if ring is None:
                ring = self._by_consumer[failure.consumer] = deque(maxlen=self.capacity)
            ring.append(failure)
            self._totals[failure.consumer] = self._totals.get(failure.consumer, 0) + 1

    def recent(self, consumer: str) -> list[FailedCall]:
        """The consumer's kept failures, newest first."""
        with self._lock:
            return list(reversed(self._by_consumer.get(consumer, ())))

    def total(self, consumer: str) -> int:
        """Failed calls of the consumer since the broker started (kept or not)."""
        with self._lock:
            return self._totals.get(consumer, 0)


class ObservedDeliverer(ConsumerDeliverer):
    """A :class:`ConsumerDeliverer` that records every call not answered OK in a log."""

    def __init__(self, *args: Any, failures: FailureLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    async def _call(self, method: str, request: DeliveryRequest) -> tuple[grpc.StatusCode, str]:
        code, details = await super()._call(method, request)
        if code is not grpc.StatusCode.OK:
            self.failures.record(
                FailedCall(
                    consumer=self.consumer.name,
                    event_id=request.event_id,
                    event_type=request.event_type,
                    method=method,
                    status=code.name,
                    details=details,
                    attempt=request.attempt,
                    at=time.time(),
                )
            )
        return code, details
