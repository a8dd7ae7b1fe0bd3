"""The consumer kit: what a service that receives Courier events over gRPC needs.

A plain generated servicer works as is; the kit adds:

- :func:`event_metadata` (``metadata``): the event's id, type, source, time, attempt and trace
  context, read from the call as one typed :class:`EventMetadata`;
- :class:`RetryLater` / :class:`RejectEvent` (``errors``): how a handler asks for a retry or a
  dead-letter; everything else it raises is retried (``INTERNAL``);
- :func:`idempotent` (``inbox``): run a handler once per event id, with the Django
  (``courier.consumer.django``) or SQLAlchemy (``courier.consumer.sqlalchemy``) inbox;
- :func:`serve` (``server``; ``aio`` for asyncio): health, reflection, error mapping, TLS,
  metrics and graceful shutdown around the servicers;
- ``courier.consumer.testing.deliver``: deliver an event in a unit test as the broker would.

This file pulls together the public API; the Django and SQLAlchemy parts are imported from
their own modules so that neither framework is needed by a service that uses the other.
"""

from __future__ import annotations

from courier.consumer.errors import (
    ConsumerError,
    RejectEvent,
    RetryLater,
    map_errors,
    status_for_exception,
)
from courier.consumer.inbox import Inbox, InboxClaim, idempotent, inbox_ddl
from courier.consumer.metadata import EventMetadata, MissingEventMetadata, event_metadata
from courier.consumer.server import ConsumerServer, TlsConfig, build_server, serve

__all__ = [
    "ConsumerError",
    "ConsumerServer",
    "EventMetadata",
    "Inbox",
    "InboxClaim",
    "MissingEventMetadata",
    "RejectEvent",
    "RetryLater",
    "TlsConfig",
    "build_server",
    "event_metadata",
    "idempotent",
    "inbox_ddl",
    "map_errors",
    "serve",
    "status_for_exception",
]
