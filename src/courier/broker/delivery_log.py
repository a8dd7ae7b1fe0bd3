"""One log line per gRPC delivery that did not succeed, saying what happens to the event next.

Every failed call -- a status other than OK or ALREADY_EXISTS -- is logged exactly once, at
WARNING, as ``delivery failed`` with these fields (JSON keys with ``--log-format json``):

=============  ============================================================================
``event_id``   the event's ``ce_id``
``event_type`` its ``ce_type`` (full protobuf name)
``consumer``   the consumer service
``method``     the gRPC path, ``/package.Service/Method``
``attempt``    delivery number through the retry topic (``courier-attempt``; 1 = first)
``calls``      gRPC calls made for this method in this attempt so far
``status``     the gRPC status code name (``UNAVAILABLE``, ``INVALID_ARGUMENT``, ...)
``action``     what happens next: ``retry_in_memory`` (called again after a backoff, or once
               the circuit breaker lets a call through), ``retry_topic`` (handed to the
               consumer's retry topic), ``dlq`` (handed to its dead-letter topic)
``error``      the status details the consumer sent (truncated, redacted)
``topic``...   ``topic``, ``partition``, ``offset`` of the record (final outcomes only)
=============  ============================================================================

Never the payload: the fields are picked by name, and it is not one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

from courier.broker.status_actions import Action

if TYPE_CHECKING:  # delivery (and handoff, through it) log through this module
    from courier.broker.delivery import DeliveryOutcome, DeliveryRequest
    from courier.broker.handoff import HandOff, SourceRecord

logger = logging.getLogger("courier.broker")

MESSAGE = "delivery failed"
RETRY_IN_MEMORY = "retry_in_memory"
RETRY_TOPIC = "retry_topic"
DLQ = "dlq"

_ACTION_OF_KIND = {"retry": RETRY_TOPIC, "dlq": DLQ}


def log_in_memory_retry(
    consumer: str,
    method: str,
    event: DeliveryRequest,
    code: grpc.StatusCode,
    details: str,
    calls: int,
) -> None:
    """A call failed with a retryable status and will be made again from memory."""
    logger.warning(
        MESSAGE,
        extra=_fields(consumer, method, event, code, details, calls, RETRY_IN_MEMORY),
    )


def log_final_outcomes(
    consumer: str,
    event: DeliveryRequest,
    source: SourceRecord,
    outcomes: Iterable[DeliveryOutcome],
    plans: Sequence[HandOff],
) -> None:
    """One line per method whose outcome is not a success, with where ``plans`` send it."""
    for outcome in outcomes:
        if outcome.action is Action.COMMIT:
            continue
        fields = _fields(
            consumer,
            outcome.method,
            event,
            outcome.code,
            outcome.details,
            outcome.calls,
            handoff_action(outcome.method, plans),
        )
        fields.update(topic=source.topic, partition=source.partition, offset=source.offset)
        logger.warning(MESSAGE, extra=fields)


def handoff_action(method: str, plans: Sequence[HandOff]) -> str:
    """``retry_topic`` or ``dlq``: the hand-off among ``plans`` that carries ``method``."""
    for plan in plans:
        if method in plan.state.failed_methods:
            return _ACTION_OF_KIND[plan.kind]
    return DLQ if any(plan.kind == "dlq" for plan in plans) else RETRY_TOPIC


def _fields(
    consumer: str,
    method: str,
    event: DeliveryRequest,
    code: grpc.StatusCode,
    details: str,
    calls: int,
    action: str,
) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "consumer": consumer,
        "method": method,
        "attempt": event.attempt,
        "calls": calls,
        "status": code.name,
        "action": action,
        "error": details,
    }
