"""Retry and dead-letter bookkeeping headers, written next to an event's own headers.

When the broker hands an event to a consumer's retry topic or DLQ topic it copies the
record unchanged -- value, key, and the contract-2 headers (``ce_*``, ``content-type``,
``traceparent``, the producer's own) -- and adds these bookkeeping headers, all UTF-8:

======================================  =====================================================
``courier-attempt``                     retry-topic deliveries made so far (``0`` on the first
                                        hand-off to the retry topic, ``0`` again after replay)
``courier-due-at``                      when the next delivery is due, **epoch milliseconds**
                                        (UTC, an integer, same unit as Kafka record timestamps)
``courier-failed-methods``              comma-separated gRPC method paths still to deliver to,
                                        e.g. ``/pkg.v1.Svc/A,/pkg.v1.Svc/B``
``courier-last-status``                 gRPC status name of the last failure (``UNAVAILABLE``)
``courier-last-error``                  last error text, truncated to 1 KiB of UTF-8
``courier-original-topic``              topic the event was first read from
``courier-original-partition``          its partition there
``courier-original-offset``             its offset there
``courier-consumer``                    consumer service name from the broker config
``courier-dead-lettered-at``            DLQ records only: when it was dead-lettered, epoch ms
======================================  =====================================================

Epoch milliseconds were chosen over RFC 3339 for the two instants because the broker compares
them with the clock on every retry record; :class:`RetryState` exposes them as ``datetime`` too.

A :class:`RetryState` is an immutable value: each hop makes a new one
(:meth:`RetryState.next_attempt`, :meth:`RetryState.dead_lettered`,
:meth:`RetryState.for_replay`), and :func:`with_retry_state` swaps the bookkeeping headers of
a record for a new state's while keeping every other header, in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

H_ATTEMPT = "courier-attempt"
H_DUE_AT = "courier-due-at"
H_FAILED_METHODS = "courier-failed-methods"
H_LAST_STATUS = "courier-last-status"
H_LAST_ERROR = "courier-last-error"
H_ORIGINAL_TOPIC = "courier-original-topic"
H_ORIGINAL_PARTITION = "courier-original-partition"
H_ORIGINAL_OFFSET = "courier-original-offset"
H_CONSUMER = "courier-consumer"
H_DEAD_LETTERED_AT = "courier-dead-lettered-at"

BOOKKEEPING_HEADERS = frozenset(
    {
        H_ATTEMPT,
        H_DUE_AT,
        H_FAILED_METHODS,
        H_LAST_STATUS,
        H_LAST_ERROR,
        H_ORIGINAL_TOPIC,
        H_ORIGINAL_PARTITION,
        H_ORIGINAL_OFFSET,
        H_CONSUMER,
        H_DEAD_LETTERED_AT,
    }
)
_REQUIRED = (
    H_ATTEMPT,
    H_DUE_AT,
    H_FAILED_METHODS,
    H_LAST_STATUS,
    H_ORIGINAL_TOPIC,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_OFFSET,
    H_CONSUMER,
)

MAX_ERROR_BYTES = 1024
_ELLIPSIS = "…"

HeaderValue = bytes | str | None
Headers = Iterable[tuple[str, HeaderValue]]


class InvalidRetryHeaders(ValueError):
    """A record carries Courier bookkeeping headers that are missing parts or malformed.

    Raised by :meth:`RetryState.from_headers`; ``problems`` lists every defect. The broker
    should treat such a record as undeliverable (dead-letter it with this message) rather
    than guess an attempt count.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid retry headers: " + "; ".join(problems))
        self.problems = problems


def now_ms() -> int:
    """The current time in epoch milliseconds (the unit of ``courier-due-at``)."""
    return time.time_ns() // 1_000_000


def truncate_error(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never splitting a character.

    A cut text ends with ``…`` (counted within the limit).

    >>> truncate_error("x" * 2000, 10)
    'xxxxxxx…'
    """
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    room = limit - len(_ELLIPSIS.encode("utf-8"))
    return encoded[:room].decode("utf-8", errors="ignore") + _ELLIPSIS


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class RetryState:
    """Where an event stands in its consumer's retry path; the value behind the headers.

    ``failed_methods`` are full gRPC paths (``/pkg.Service/Method``): a retry goes only to
    them. ``last_error`` is truncated to 1 KiB on construction.
    """

    consumer: str
    attempt: int
    due_at_ms: int
    failed_methods: tuple[str, ...]
    last_status: str
    last_error: str
    original_topic: str
    original_partition: int
    original_offset: int
    dead_lettered_at_ms: int | None = None

    def __post_init__(self) -> None:
        problems = _state_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "failed_methods", tuple(self.failed_methods))
        object.__setattr__(self, "last_error", truncate_error(self.last_error))

    # -- hops -------------------------------------------------------------------------------

    @classmethod
    def first_failure(
        cls,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        failed_methods: Iterable[str],
        last_status: str,
        last_error: str,
        due_at_ms: int,
    ) -> RetryState:
        """The state for an event's first hand-off from a distribution topic to the retry topic."""
        return cls(
            consumer=consumer,
            attempt=0,
            due_at_ms=due_at_ms,
            failed_methods=tuple(failed_methods),
            last_status=last_status,
            last_error=last_error,
            original_topic=topic,
            original_partition=partition,
            original_offset=offset,
        )

    def next_attempt(
        self,
        *,
        failed_methods: Iterable[str],
        last_status: str,
        last_error: str,
        due_at_ms: int,
    ) -> RetryState:
        """After a failed retry-topic delivery: one more attempt counted, new failure recorded."""
        return replace(
            self,
            attempt=self.attempt + 1,
            failed_methods=tuple(failed_methods),
            last_status=last_status,
            last_error=last_error,
            due_at_ms=due_at_ms,
        )

    def dead_lettered(
        self,
        *,
        at_ms: int,
        failed_methods: Iterable[str] | None = None,
        last_status: str | None = None,
        last_error: str | None = None,
        attempt: int | None = None,
    ) -> RetryState:
        """The state written to the DLQ topic: stamped with ``at_ms``, last failure updated."""
        return replace(
            self,
            dead_lettered_at_ms=at_ms,
            failed_methods=self.failed_methods if failed_methods is None else tuple(failed_methods),
            last_status=self.last_status if last_status is None else last_status,
            last_error=self.last_error if last_error is None else last_error,
            attempt=self.attempt if attempt is None else attempt,
        )

    def for_replay(self, *, due_at_ms: int) -> RetryState:
        """A DLQ event sent back to the retry topic: attempt 0, due at ``due_at_ms``.

        The failed methods are kept, so the replay goes only to the methods that failed; the
        last status and error stay as a record of why it was dead-lettered.
        """
        return replace(self, attempt=0, due_at_ms=due_at_ms, dead_lettered_at_ms=None)

    # -- views ------------------------------------------------------------------------------

    @property
    def due_at(self) -> datetime:
        """``due_at_ms`` as an aware UTC datetime."""
        return _ms_to_datetime(self.due_at_ms)

    @property
    def dead_lettered_at(self) -> datetime | None:
        """``dead_lettered_at_ms`` as an aware UTC datetime, or None outside the DLQ."""
        if self.dead_lettered_at_ms is None:
            return None
        return _ms_to_datetime(self.dead_lettered_at_ms)

    def due_in(self, at_ms: int | None = None) -> float:
        """Seconds from ``at_ms`` (default: now) until due; zero or negative means due."""
        return (self.due_at_ms - (now_ms() if at_ms is None else at_ms)) / 1000

    # -- wire -------------------------------------------------------------------------------

    def to_headers(self) -> list[tuple[str, bytes]]:
        """The bookkeeping headers, UTF-8, in a fixed order."""
        pairs = [
            (H_ATTEMPT, str(self.attempt)),
            (H_DUE_AT, str(self.due_at_ms)),
            (H_FAILED_METHODS, ",".join(self.failed_methods)),
            (H_LAST_STATUS, self.last_status),
            (H_LAST_ERROR, self.last_error),
            (H_ORIGINAL_TOPIC, self.original_topic),
            (H_ORIGINAL_PARTITION, str(self.original_partition)),
            (H_ORIGINAL_OFFSET, str(self.original_offset)),
            (H_CONSUMER, self.consumer),
        ]
        if self.dead_lettered_at_ms is not None:
            pairs.append((H_DEAD_LETTERED_AT, str(self.dead_lettered_at_ms)))
        return [(name, value.encode("utf-8")) for name, value in pairs]

    @classmethod
    def from_headers(cls, headers: Headers | None) -> RetryState | None:
        """Read the state back from a record's headers.

        Returns None when the record carries no bookkeeping header at all (an event read
        from a distribution topic). Raises :class:`InvalidRetryHeaders` when some are there
        but one is missing or malformed. When a name repeats, the last value wins.
        """
        found: dict[str, str] = {}
        problems: list[str] = []
        for name, raw in headers or ():
            if name not in BOOKKEEPING_HEADERS:
                continue
            if raw is None:
                found[name] = ""
            elif isinstance(raw, str):
                found[name] = raw
            else:
                try:
                    found[name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    problems.append(f"header {name!r} is not UTF-8")
                    found[name] = ""
        if not found:
            return None
        problems.extend(f"missing header {name!r}" for name in _REQUIRED if name not in found)
        if problems:
            raise InvalidRetryHeaders(problems)

        def integer(name: str, minimum: int = 0) -> int:
            text = found[name]
            if not text.isascii() or not text.isdigit() or int(text) < minimum:
                problems.append(f"header {name!r} must be an integer >= {minimum}, got {text!r}")
                return minimum
            return int(text)

        failed = found[H_FAILED_METHODS]
        dead = found.get(H_DEAD_LETTERED_AT)
        values = {
            "consumer": found[H_CONSUMER],
            "attempt": integer(H_ATTEMPT),
            "due_at_ms": integer(H_DUE_AT),
            "failed_methods": tuple(failed.split(",")) if failed else (),
            "last_status": found[H_LAST_STATUS],
            "last_error": found.get(H_LAST_ERROR, ""),
            "original_topic": found[H_ORIGINAL_TOPIC],
            "original_partition": integer(H_ORIGINAL_PARTITION),
            "original_offset": integer(H_ORIGINAL_OFFSET),
            "dead_lettered_at_ms": None if dead is None else integer(H_DEAD_LETTERED_AT),
        }
        if problems:
            raise InvalidRetryHeaders(problems)
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidRetryHeaders([str(exc)]) from exc


def _state_problems(state: RetryState) -> list[str]:
    problems = []
    if not state.consumer:
        problems.append("consumer must not be empty")
    if not state.original_topic:
        problems.append("original topic must not be empty")
    if not state.last_status:
        problems.append("last status must not be empty")
    for name in ("attempt", "due_at_ms", "original_partition", "original_offset"):
        value = getattr(state, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name} must be an integer >= 0, got {value!r}")
    dead = state.dead_lettered_at_ms
    if dead is not None and (isinstance(dead, bool) or not isinstance(dead, int) or dead < 0):
        problems.append(f"dead_lettered_at_ms must be an integer >= 0 or None, got {dead!r}")
    for method in state.failed_methods:
        if not method or "," in method:
            problems.append(f"failed method {method!r} must be non-empty and contain no comma")
    return problems


def strip_bookkeeping(headers: Headers | None) -> list[tuple[str, bytes | None]]:
    """Every header except Courier's bookkeeping ones, in order, values as bytes."""
    kept: list[tuple[str, bytes | None]] = []
    for name, raw in headers or ():
        if name in BOOKKEEPING_HEADERS:
            continue
        kept.append((name, raw.encode("utf-8") if isinstance(raw, str) else raw))
    return kept


def with_retry_state(headers: Headers | None, state: RetryState) -> list[tuple[str, bytes | None]]:
    """A record's headers with its bookkeeping replaced by ``state``'s.

    The event's own headers (``ce_*``, ``content-type``, ``traceparent``, the producer's)
    are kept unchanged and in order; the bookkeeping headers follow them.
    """
    return [*strip_bookkeeping(headers), *state.to_headers()]
