"""``build_event(message).save()``: an event written in the caller's own database transaction.

::

    from courier import build_event

    @transaction.atomic                      # Django
    def deliver_package(package):
        package.status = "delivered"
        package.save()
        build_event(PackageDelivered(package=package.to_proto())).save()

    with Session(engine) as session, session.begin():     # SQLAlchemy 2
        session.add(order)
        build_event(OrderPlaced(...), key=str(order.id)).save(session)

The row commits or rolls back with the caller's transaction; the relay (or Debezium) ships it
to Kafka afterwards. Nothing here talks to Kafka.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message as ProtoMessage

from courier.events import EventEnvelope, uuid7
from courier.observability.tracing import current_trace_headers, outbox_save_span
from courier.outbox.topics import key_from_message, topic_for
from courier.settings import ENV_SERVICE_NAME, service_name


class OutboxTransactionError(RuntimeError):
    """``save()`` was called outside a database transaction.

    An outbox row written in autocommit mode is published even if the caller's business
    change later fails, which is exactly what the outbox exists to prevent. Wrap the call in
    ``transaction.atomic()`` / ``session.begin()``, or pass ``allow_outside_transaction=True``
    when publishing a lone event is really intended.
    """


class OutboxTableMissing(RuntimeError):
    """The outbox table does not exist in the database ``save()`` wrote to.

    Create it with the integration's migrations (Django: ``migrate courier_outbox``;
    SQLAlchemy: ``outbox_table(metadata)`` + ``create_all`` or Alembic) or with
    ``courier outbox create-table --database-url URL``. The original driver error is chained.
    """


_UNDEFINED_TABLE_SQLSTATE = "42P01"  # Postgres
_MYSQL_NO_SUCH_TABLE = 1146


def _is_missing_table(exc: BaseException) -> bool:
    """Whether a driver error (possibly wrapped by Django or SQLAlchemy) says "no such table"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "pgcode", None) == _UNDEFINED_TABLE_SQLSTATE:
            return True
        args = getattr(current, "args", ())
        if args and args[0] == _MYSQL_NO_SUCH_TABLE:
            return True
        if type(current).__name__ == "OperationalError" and "no such table" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


class OutboxEvent:
    """An event built from a protobuf message, ready to be saved into the outbox.

    ``envelope`` holds everything that will reach Kafka (id, type, source, time, topic, key,
    payload, extra headers); :meth:`save` writes it through the caller's transaction.
    """

    __slots__ = ("envelope",)

    def __init__(self, envelope: EventEnvelope) -> None:
        self.envelope = envelope

    def __repr__(self) -> str:
        e = self.envelope
        return f"OutboxEvent(id={e.id!r}, type={e.type!r}, topic={e.topic!r}, key={e.key!r})"

    def save(
        self,
        session: Any = None,
        *,
        using: str | None = None,
        table: str | None = None,
        allow_outside_transaction: bool = False,
        table_less: bool = False,
    ) -> EventEnvelope:
        """Insert the event into the outbox in the current transaction; returns the envelope.

        - no ``session``: Django; writes through ``connections[using or "default"]``;
        - a SQLAlchemy ``Session`` or ``Connection``: adds the row to its transaction;
        - a DB-API connection (psycopg2, sqlite3): executes the INSERT on it (``table``
          defaults to ``courier_outbox``).

        ``table_less=True`` (Postgres only) writes the event into the WAL as a logical message
        instead of a row (see :mod:`courier.outbox.wal`); only the log-based relay sees it.

        Raises :class:`OutboxTransactionError` when no transaction is open, unless
        ``allow_outside_transaction`` is true, and :class:`OutboxTableMissing` when the
        outbox table was never created.

        With an OpenTelemetry SDK configured, the write happens in a ``create <topic>``
        PRODUCER span (child of the trace context captured by :func:`build_event`), and the
        row stores that span's ``traceparent``: the returned envelope carries it.
        """
        envelope = self.envelope
        with outbox_save_span(
            envelope.topic, envelope.id, envelope.type, envelope.key, envelope.headers
        ) as headers:
            if headers is not envelope.headers:
                envelope = dataclasses.replace(envelope, headers=headers)
            try:
                self._write(envelope, session, using, table, allow_outside_transaction, table_less)
            except Exception as exc:
                if not table_less and _is_missing_table(exc):
                    raise OutboxTableMissing(
                        f"the outbox table {table or 'courier_outbox'!r} does not exist: run your "
                        "migrations (Django: `manage.py migrate courier_outbox`) or "
                        "`courier outbox create-table`"
                    ) from exc
                raise
        return envelope

    @staticmethod
    def _write(
        envelope: EventEnvelope,
        session: Any,
        using: str | None,
        table: str | None,
        allow_outside_transaction: bool,
        table_less: bool,
    ) -> None:
        if session is None:
            from courier.outbox.django.writer import save_with_django

            save_with_django(
                envelope, using=using, allow=allow_outside_transaction, table_less=table_less
            )
        elif type(session).__module__.startswith("sqlalchemy"):
            from courier.outbox.sqlalchemy import save_with_sqlalchemy

            save_with_sqlalchemy(
                envelope,
                session,
                table=table,
                allow=allow_outside_transaction,
                table_less=table_less,
            )
        else:
            from courier.outbox.dbapi import save_with_dbapi

            save_with_dbapi(
                envelope,
                session,
                table=table,
                allow=allow_outside_transaction,
                table_less=table_less,
            )


def build_event(
    message: Any,
    *,
    key: str | None = None,
    topic: str | None = None,
    headers: Mapping[str, str] | None = None,
    source: str | None = None,
) -> OutboxEvent:
    """Wrap a protobuf message as an event: id (UUIDv7), time, source, type, topic, trace context.

    - ``type`` is the message's full protobuf name (``packages.v1.PackageDelivered``);
    - ``topic`` is explicit, else derived from the message (see :mod:`courier.outbox.topics`);
    - ``key`` is explicit, else the ``(courier.v1.key_field)`` field's value, else none;
    - ``source`` is explicit, else the Django setting or environment variable
      ``COURIER_SERVICE_NAME``;
    - ``headers`` are extra Kafka headers; the active OpenTelemetry span's ``traceparent``
      (and ``tracestate``) are added unless given explicitly.
    """
    if not isinstance(message, ProtoMessage):
        what = (
            f"the class {message.__name__}" if isinstance(message, type) else type(message).__name__
        )
        raise TypeError(f"build_event() takes a protobuf message instance, got {what}")
    descriptor = message.DESCRIPTOR
    if key is None:
        key = key_from_message(message)
    elif not isinstance(key, str):
        raise TypeError(f"event key must be a str or None, got {type(key).__name__}")
    extra = current_trace_headers()
    extra.update(headers or {})
    envelope = EventEnvelope(
        id=str(uuid7()),
        type=descriptor.full_name,
        source=source or _default_source(),
        time=datetime.now(UTC),
        topic=topic_for(descriptor, topic),
        key=key,
        payload=message.SerializeToString(),
        headers=extra,
    )
    return OutboxEvent(envelope)


def _default_source() -> str:
    if not os.environ.get(ENV_SERVICE_NAME) and "django.conf" in sys.modules:
        from django.conf import settings as django_settings

        if django_settings.configured:
            configured = getattr(django_settings, "COURIER_SERVICE_NAME", None)
            if configured:
                return str(configured)
    return service_name()
