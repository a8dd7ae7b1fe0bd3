"""Idempotent handlers: the inbox table records which events a consumer has processed.

Delivery is at least once, so a handler may see an event again (a retry after a timeout whose
call had in fact succeeded, a replay from the DLQ, a broker restart). The inbox makes the
second delivery a no-op: the event id is claimed *in the handler's own database transaction*,

    INSERT INTO courier_inbox (consumer, event_id, processed_at) ... ON CONFLICT DO NOTHING

so the claim commits together with the handler's writes, or rolls back with them. A
concurrent delivery of the same event waits on the row lock and then sees it claimed.

Table (``courier_inbox``), one row per (consumer, event id)::

    consumer      varchar(255) not null  \\ primary key
    event_id      varchar(255) not null  /
    processed_at  timestamp with time zone not null

The broker delivers one event to each configured method of a consumer as separate calls
(service-a's EndpointA and EndpointB both get every ``event_y``), so :func:`idempotent` claims
per handler: the ``consumer`` column holds ``service-a/EndpointA``. Pass ``handler=`` to
choose another name, e.g. one shared by two methods that must not both run.

Backends: :mod:`courier.consumer.sqlalchemy` (``SqlAlchemyInbox``) and the Django app
``courier.consumer.django`` (``DjangoInbox``). Both work with :func:`idempotent`::

    inbox = DjangoInbox(consumer="service-a")

    class EventsAPI(EventsAPIServicer):
        @idempotent(inbox)
        def EndpointA(self, request, context):
            Delivery.objects.create(package_id=request.package.id)  # same transaction as the claim
            return Empty()

A redelivered event is answered ``ALREADY_EXISTS`` (the broker commits it) without running the
handler; pass ``on_duplicate=Empty`` to answer OK with that response instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import grpc

from courier.consumer.metadata import event_metadata

INBOX_TABLE = "courier_inbox"
KEY_LENGTH = 255

_COMMITTING = (None, grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS)


def claim_key(consumer: str, handler: str | None) -> str:
    """The ``consumer`` column of a claim: ``service-a/EndpointA``, or ``service-a`` alone."""
    key = f"{consumer}/{handler}" if handler else consumer
    if len(key) > KEY_LENGTH:
        raise ValueError(f"inbox key longer than {KEY_LENGTH} characters: {key!r}")
    return key


class InboxClaim:
    """The outcome of claiming one event id inside a transaction.

    ``duplicate`` is True when the event was already processed: skip the work. Call
    :meth:`discard` to roll the transaction back (claim included) without raising.
    """

    def __init__(self, consumer: str, event_id: str, *, duplicate: bool) -> None:
        self.consumer = consumer
        self.event_id = event_id
        self.duplicate = duplicate
        self.discarded = False

    def discard(self) -> None:
        """Roll back at the end of the block: the event counts as not processed."""
        self.discarded = True

    def __repr__(self) -> str:
        state = "duplicate" if self.duplicate else "claimed"
        return f"InboxClaim({self.consumer!r}, {self.event_id!r}, {state})"


class Inbox(Protocol):
    """What :func:`idempotent` needs from a backend."""

    consumer: str

    def transaction(
        self, event_id: str, handler: str | None = None
    ) -> AbstractContextManager[InboxClaim]:
        """Open the handler's transaction and claim ``event_id`` (for ``handler``) in it.

        Commits at the end of the block, rolls back on an exception or after
        :meth:`InboxClaim.discard`.
        """
        ...


F = TypeVar("F", bound=Callable[..., Any])


def idempotent(
    inbox: Inbox,
    *,
    handler: str | None = None,
    on_duplicate: Callable[[], Any] | None = None,
) -> Callable[[F], F]:
    """Run a sync servicer method at most once per event id, in the inbox's transaction.

    The event id comes from the call's metadata (:func:`courier.consumer.event_metadata`).
    Claims are per ``handler`` (default: the method's name). The handler's writes share the
    claim's transaction: when the handler raises, or sets an error status on the context, both
    roll back and the broker's retry runs it again. A duplicate is answered ``ALREADY_EXISTS``,
    or with ``on_duplicate()`` as an OK response.
    """

    def decorate(method: F) -> F:
        if inspect.iscoroutinefunction(method):
            raise TypeError(
                f"@idempotent wraps sync handlers (database transactions are sync); "
                f"{method.__qualname__} is async"
            )
        name = handler or method.__name__

        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: Any) -> Any:
            event = event_metadata(context)
            with inbox.transaction(event.id, name) as claim:
                if not claim.duplicate:
                    response = method(self, request, context)
                    if _status_of(context) not in _COMMITTING:
                        claim.discard()
                    return response
            if on_duplicate is not None:
                return on_duplicate()
            context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"event {event.id} already processed by {claim.consumer}",
            )

        return wrapper  # type: ignore[return-value]

    return decorate


def _status_of(context: Any) -> grpc.StatusCode | None:
    try:
        code: grpc.StatusCode | None = context.code()
    except (AttributeError, NotImplementedError):
        return None
    return code


_DDL = {
    "postgresql": """\
CREATE TABLE IF NOT EXISTS {table} (
    consumer varchar(255) NOT NULL,
    event_id varchar(255) NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS {table}_processed_at ON {table} (processed_at);
""",
    "sqlite": """\
CREATE TABLE IF NOT EXISTS {table} (
    consumer varchar(255) NOT NULL,
    event_id varchar(255) NOT NULL,
    processed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS {table}_processed_at ON {table} (processed_at);
""",
    "mysql": """\
CREATE TABLE IF NOT EXISTS {table} (
    consumer varchar(255) NOT NULL,
    event_id varchar(255) NOT NULL,
    processed_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (consumer, event_id),
    KEY {table}_processed_at (processed_at)
);
""",
}


def inbox_ddl(dialect: str, table: str = INBOX_TABLE) -> str:
    """Raw ``CREATE TABLE IF NOT EXISTS`` for ``postgresql``, ``sqlite`` or ``mysql``.

    For services that use neither Django migrations nor SQLAlchemy's ``create_all``.
    """
    name = {"postgres": "postgresql", "mariadb": "mysql"}.get(dialect, dialect)
    if name not in _DDL:
        raise ValueError(f"no inbox DDL for {dialect!r}; known: {', '.join(sorted(_DDL))}")
    if not table.replace("_", "").isalnum():
        raise ValueError(f"not a plain table name: {table!r}")
    return _DDL[name].format(table=table)
