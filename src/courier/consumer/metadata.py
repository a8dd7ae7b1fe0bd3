"""The event metadata that rides along a delivery (DESIGN.md contract 4).

The broker calls ``/<package.Service>/<Method>`` with the event's protobuf bytes as the request
and these gRPC metadata keys::

    ce-id  ce-type  ce-source  ce-time  courier-attempt  traceparent  [tracestate]

A handler reads them as one typed value::

    def PackageDelivered(self, request, context):
        event = event_metadata(context)
        log.info("event %s, attempt %d", event.id, event.attempt)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from courier.consumer.errors import RejectEvent
from courier.events import format_time, parse_time

KEY_ID = "ce-id"
KEY_TYPE = "ce-type"
KEY_SOURCE = "ce-source"
KEY_TIME = "ce-time"
KEY_ATTEMPT = "courier-attempt"
KEY_TRACEPARENT = "traceparent"
KEY_TRACESTATE = "tracestate"

REQUIRED_KEYS = (KEY_ID, KEY_TYPE, KEY_SOURCE, KEY_TIME, KEY_ATTEMPT)


class MissingEventMetadata(RejectEvent):
    """The call carries no (or broken) Courier event metadata.

    A call without it did not come from the broker, so there is nothing to retry: it is a
    :class:`RejectEvent` and the error mapping answers ``INVALID_ARGUMENT``. ``problems`` lists
    every missing or malformed key.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("no Courier event metadata on this call: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EventMetadata:
    """Who sent an event, when, and how many times it has been delivered.

    ``attempt`` is 1 on the first delivery and grows with each redelivery through the
    consumer's retry topic; ``traceparent``/``tracestate`` are W3C trace context, when present.
    """

    id: str
    type: str
    source: str
    time: datetime
    attempt: int = 1
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def is_redelivery(self) -> bool:
        """True from the second delivery on: the handler may already have seen this event."""
        return self.attempt > 1

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata pairs the broker sends for this event (read by :func:`event_metadata`)."""
        pairs = [
            (KEY_ID, self.id),
            (KEY_TYPE, self.type),
            (KEY_SOURCE, self.source),
            (KEY_TIME, format_time(self.time)),
            (KEY_ATTEMPT, str(self.attempt)),
        ]
        if self.traceparent:
            pairs.append((KEY_TRACEPARENT, self.traceparent))
        if self.tracestate:
            pairs.append((KEY_TRACESTATE, self.tracestate))
        return tuple(pairs)

    @classmethod
    def from_grpc_metadata(cls, metadata: Iterable[Any] | None) -> EventMetadata:
        """Parse invocation metadata (pairs or ``grpc`` metadatum objects).

        Raises :class:`MissingEventMetadata` naming every missing or malformed key.
        """
        values = _as_dict(metadata)
        problems = [f"missing {key!r}" for key in REQUIRED_KEYS if not values.get(key)]
        moment: datetime | None = None
        if values.get(KEY_TIME):
            try:
                moment = parse_time(values[KEY_TIME])
            except ValueError as exc:
                problems.append(f"{KEY_TIME}: {exc}")
        attempt = 0
        if values.get(KEY_ATTEMPT):
            try:
                attempt = int(values[KEY_ATTEMPT])
            except ValueError:
                attempt = 0
            if attempt < 1:
                raw = values[KEY_ATTEMPT]
                problems.append(f"{KEY_ATTEMPT} must be a positive integer: {raw!r}")
        if problems or moment is None:
            raise MissingEventMetadata(problems)
        return cls(
            id=values[KEY_ID],
            type=values[KEY_TYPE],
            source=values[KEY_SOURCE],
            time=moment,
            attempt=attempt,
            traceparent=values.get(KEY_TRACEPARENT) or None,
            tracestate=values.get(KEY_TRACESTATE) or None,
        )


def event_metadata(context: Any) -> EventMetadata:
    """The event metadata of the current call, from a sync or asyncio ``ServicerContext``.

    Raises :class:`MissingEventMetadata` (answered as ``INVALID_ARGUMENT``) when the call
    was not made by the broker or a Courier test helper.
    """
    return EventMetadata.from_grpc_metadata(context.invocation_metadata())


def _as_dict(metadata: Iterable[Any] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in metadata or ():
        if isinstance(item, tuple):
            key, value = item
        else:  # grpc's _Metadatum / aio metadata entries expose .key and .value
            key, value = item.key, item.value
        if isinstance(value, bytes):  # only "-bin" keys are bytes; none of ours are
            continue
        values[str(key).lower()] = value
    return values
