"""``build_event(...).save()`` under Django: one INSERT through the current connection."""

from __future__ import annotations

import uuid
from datetime import UTC

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from courier.events import EventEnvelope
from courier.outbox import wal


def save_with_django(
    envelope: EventEnvelope, *, using: str | None, allow: bool, table_less: bool = False
) -> None:
    """Insert the envelope as an ``OutboxEvent`` row on database ``using`` (default ``default``).

    Refused outside ``transaction.atomic()`` unless ``allow``: in autocommit mode the event
    would be published even if the caller's business change is later rolled back.
    """
    from courier.outbox.builder import OutboxTransactionError
    from courier.outbox.django.models import OutboxEvent

    alias = using or DEFAULT_DB_ALIAS
    if not allow and not connections[alias].in_atomic_block:
        raise OutboxTransactionError(
            f"build_event(...).save() outside transaction.atomic() on database {alias!r}: "
            "wrap the business change and the event in @transaction.atomic, "
            "or pass allow_outside_transaction=True"
        )
    if table_less:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise ValueError("table_less=True needs Postgres (pg_logical_emit_message)")
        with connection.cursor() as cursor:
            cursor.execute(wal.EMIT_SQL, [wal.MESSAGE_PREFIX, wal.encode_envelope(envelope)])
        return
    created = envelope.time
    if not getattr(settings, "USE_TZ", True):
        # Without USE_TZ Django refuses aware datetimes on some backends; store UTC.
        created = created.astimezone(UTC).replace(tzinfo=None)
    row = OutboxEvent(
        id=uuid.UUID(envelope.id),
        topic=envelope.topic,
        key=envelope.key,
        type=envelope.type,
        source=envelope.source,
        payload=envelope.payload,
        headers=dict(envelope.headers),
        created_at=created,
    )
    row.save(force_insert=True, using=alias)
