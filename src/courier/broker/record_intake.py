"""From a Kafka record to a :class:`~courier.broker.partition_state.TrackedEvent`, or the
reason it cannot be delivered (then it goes to the DLQ, never crashes the loop).

A record from a distribution topic must be a contract-2 event; a record from the retry topic
must also carry valid bookkeeping headers, and goes only to its failed methods, as delivery
number ``courier-attempt + 2`` (delivery 1 came from the distribution topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from confluent_kafka import Message

from courier.broker.delivery import delivery_request
from courier.broker.handoff import SourceRecord
from courier.broker.partition_state import PartitionState, TrackedEvent
from courier.broker.retry_headers import InvalidRetryHeaders, RetryState
from courier.events import EventEnvelope, InvalidEventHeaders


@dataclass(frozen=True)
class Undeliverable:
    """Why a record cannot be delivered, for its DLQ record."""

    error: str
    methods: tuple[str, ...] = ()
    state: RetryState | None = None


def source_record(message: Message) -> SourceRecord:
    """The parts of a consumed (error-free) message that the broker keeps."""
    headers = cast(list[tuple[str, bytes | None]], message.headers() or [])
    return SourceRecord(
        topic=cast(str, message.topic()),
        partition=cast(int, message.partition()),
        offset=cast(int, message.offset()),
        key=message.key(),
        value=message.value(),
        headers=tuple(headers),
    )


def read_distribution_record(
    part: PartitionState, source: SourceRecord, methods: tuple[str, ...], ordered: bool
) -> TrackedEvent | Undeliverable:
    """An event from a distribution topic, to be delivered to ``methods`` (first delivery)."""
    try:
        envelope = EventEnvelope.from_kafka(source.topic, source.key, source.value, source.headers)
    except InvalidEventHeaders as exc:
        return Undeliverable(f"not a Courier event: {exc}", methods)
    return TrackedEvent(
        partition=part,
        source=source,
        envelope=envelope,
        state=None,
        methods=methods,
        request=delivery_request(envelope, attempt=1),
        ordering_key=source.key if ordered else None,
    )


def read_retry_record(part: PartitionState, source: SourceRecord) -> TrackedEvent | Undeliverable:
    """An event from the retry topic, to be delivered to the methods that failed."""
    try:
        state = RetryState.from_headers(source.headers)
    except InvalidRetryHeaders as exc:
        return Undeliverable(str(exc))
    if state is None:
        return Undeliverable("record in the retry topic has no courier-* headers")
    try:
        envelope = EventEnvelope.from_kafka(
            state.original_topic, source.key, source.value, source.headers
        )
    except InvalidEventHeaders as exc:
        return Undeliverable(f"not a Courier event: {exc}", state.failed_methods, state)
    return TrackedEvent(
        partition=part,
        source=source,
        envelope=envelope,
        state=state,
        methods=state.failed_methods,
        request=delivery_request(envelope, attempt=state.attempt + 2),
    )
