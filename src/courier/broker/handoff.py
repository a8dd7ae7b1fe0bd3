"""What to write to the retry and DLQ topics after an event's delivery: a pure decision.

For one event and its :class:`~courier.broker.delivery.DeliveryOutcome` per method:

- methods that answered COMMIT are done and never called again for this event;
- methods whose outcome is RETRY go, together, in one record to the consumer's retry topic,
  due after ``retry-delays[n]`` -- or to its DLQ once ``max-retry-attempts`` retry-topic
  deliveries have been made;
- methods whose outcome is DEAD_LETTER go, together, in one record to the DLQ at once.

Each record is the event's record unchanged (value, key, every header) plus the bookkeeping
headers of :mod:`courier.broker.retry_headers`; ``courier-failed-methods`` names only the
methods that still need it, so a retry goes back only to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from courier.broker.config import ConsumerConfig
from courier.broker.delivery import DeliveryOutcome
from courier.broker.delivery_trace import with_trace_links
from courier.broker.retry_headers import Headers, RetryState, with_retry_state
from courier.broker.status_actions import Action

INVALID_EVENT_STATUS = "INVALID_ARGUMENT"
"""``courier-last-status`` of a record the broker could not read as an event (bad headers)."""


@dataclass(frozen=True)
class SourceRecord:
    """The Kafka record an event was read from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class HandOff:
    """One record to write: to the retry topic or the DLQ, with its bookkeeping state."""

    kind: Literal["retry", "dlq"]
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    state: RetryState


def plan_handoffs(
    consumer: ConsumerConfig,
    source: SourceRecord,
    state: RetryState | None,
    outcomes: Sequence[DeliveryOutcome],
    now_ms: int,
) -> list[HandOff]:
    """The retry/DLQ records for one delivered event (empty when every method succeeded).

    ``state`` is the record's retry state when it was read from the retry topic, None when
    it came from a distribution topic.
    """
    made = 0 if state is None else state.attempt + 1  # retry-topic deliveries made so far
    retry = [o for o in outcomes if o.action is Action.RETRY]
    dead = [o for o in outcomes if o.action is Action.DEAD_LETTER]
    plans: list[HandOff] = []
    if retry and made < consumer.max_retry_attempts:
        due = now_ms + int(consumer.retry_delay(made + 1) * 1000)
        status, error = _summary(retry)
        methods = [o.method for o in retry]
        if state is None:
            new = _first_failure(consumer, source, methods, status, error, due)
        else:
            new = state.next_attempt(
                failed_methods=methods, last_status=status, last_error=error, due_at_ms=due
            )
        plans.append(_record("retry", consumer.retry_topic, source, new, retry))
    elif retry:
        dead = retry + dead
    if dead:
        status, error = _summary(dead)
        methods = [o.method for o in dead]
        base = state or _first_failure(consumer, source, methods, status, error, now_ms)
        new = base.dead_lettered(
            at_ms=now_ms,
            failed_methods=methods,
            last_status=status,
            last_error=error,
            attempt=made,
        )
        plans.append(_record("dlq", consumer.dlq_topic, source, new, dead))
    return plans


def plan_invalid(
    consumer: ConsumerConfig,
    source: SourceRecord,
    methods: Sequence[str],
    error: str,
    now_ms: int,
    state: RetryState | None = None,
) -> HandOff:
    """The DLQ record for a record that cannot be delivered at all (not a valid event)."""
    base = state or _first_failure(consumer, source, methods, INVALID_EVENT_STATUS, error, now_ms)
    new = base.dead_lettered(
        at_ms=now_ms, failed_methods=methods, last_status=INVALID_EVENT_STATUS, last_error=error
    )
    return _record("dlq", consumer.dlq_topic, source, new)


def _first_failure(
    consumer: ConsumerConfig,
    source: SourceRecord,
    methods: Sequence[str],
    status: str,
    error: str,
    due_at_ms: int,
) -> RetryState:
    return RetryState.first_failure(
        consumer=consumer.name,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        failed_methods=methods,
        last_status=status,
        last_error=error,
        due_at_ms=due_at_ms,
    )


def _summary(outcomes: Sequence[DeliveryOutcome]) -> tuple[str, str]:
    status = outcomes[0].status
    if len(outcomes) == 1:
        return status, outcomes[0].details
    error = "; ".join(f"{o.method}: {o.status} {o.details}".rstrip() for o in outcomes)
    return status, error


def _record(
    kind: Literal["retry", "dlq"],
    topic: str,
    source: SourceRecord,
    state: RetryState,
    failed: Sequence[DeliveryOutcome] | None = None,
) -> HandOff:
    headers: Headers = source.headers
    kept = with_retry_state(headers, state)
    return HandOff(
        kind=kind,
        topic=topic,
        key=source.key,
        value=source.value,
        # The failed deliveries' spans, for the next delivery's span links (a record that was
        # never delivered keeps the links it came with).
        headers=kept if failed is None else with_trace_links(kept, failed),
        state=state,
    )
