"""The inbox for Django services (see :mod:`courier.consumer.inbox`).

::

    # settings.py: INSTALLED_APPS += ["courier.consumer.django"]; then manage.py migrate

    from courier.consumer import idempotent
    from courier.consumer.django.inbox import DjangoInbox

    inbox = DjangoInbox(consumer="service-a")

    class EventsAPI(EventsAPIServicer):
        @idempotent(inbox)
        def EndpointA(self, request, context):
            Delivery.objects.create(package_id=request.package.id)  # inside the claim's atomic()
            return Empty()

Inside your own ``transaction.atomic()`` block, :func:`claim_event` does the claim alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from courier.consumer.inbox import InboxClaim, claim_key


def claim_event(consumer: str, event_id: str, using: str = "default") -> bool:
    """Claim ``event_id`` for ``consumer`` in the current ``transaction.atomic()`` block.

    True: first time, go ahead. False: already processed. Postgres and SQLite use
    ``ON CONFLICT DO NOTHING``, MySQL ``INSERT IGNORE``, other databases a savepoint.
    """
    from courier.consumer.django.models import InboxEntry

    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError(
            "claim_event must run inside transaction.atomic(): the claim has to commit or roll "
            "back with the handler's own writes"
        )
    now = timezone.now()
    if connection.vendor not in ("postgresql", "sqlite", "mysql"):
        try:
            with transaction.atomic(using=using):  # a savepoint, so a conflict keeps the outer
                InboxEntry.objects.using(using).create(
                    consumer=consumer, event_id=event_id, processed_at=now
                )
        except IntegrityError:
            return False
        return True
    table = connection.ops.quote_name(InboxEntry._meta.db_table)
    columns = "(consumer, event_id, processed_at) VALUES (%s, %s, %s)"
    if connection.vendor == "mysql":
        sql = f"INSERT IGNORE INTO {table} {columns}"
    else:
        sql = f"INSERT INTO {table} {columns} ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(sql, [consumer, event_id, connection.ops.adapt_datetimefield_value(now)])
        return bool(cursor.rowcount == 1)


class DjangoInbox:
    """An inbox whose transactions are ``transaction.atomic(using=using)`` blocks."""

    def __init__(self, consumer: str, using: str = "default") -> None:
        if not consumer:
            raise ValueError("the inbox needs the consumer's name")
        self.consumer = consumer
        self.using = using

    @contextmanager
    def transaction(self, event_id: str, handler: str | None = None) -> Iterator[InboxClaim]:
        """An ``atomic()`` block with ``event_id`` claimed (for ``handler``) in it.

        Commits at the end of the block; rolls back on an exception or ``claim.discard()``.
        """
        with transaction.atomic(using=self.using):
            key = claim_key(self.consumer, handler)
            claim = InboxClaim(key, event_id, duplicate=not claim_event(key, event_id, self.using))
            yield claim
            if claim.discarded:
                transaction.set_rollback(True, using=self.using)

    def processed(self, event_id: str, handler: str | None = None) -> bool:
        """Whether ``event_id`` is recorded as processed by this consumer's ``handler``."""
        from courier.consumer.django.models import InboxEntry

        entries = InboxEntry.objects.using(self.using)
        key = claim_key(self.consumer, handler)
        return bool(entries.filter(consumer=key, event_id=event_id).exists())

    def purge(self, older_than: timedelta) -> int:
        """Forget events processed more than ``older_than`` ago; returns how many rows went.

        Keep ``older_than`` well beyond the longest a redelivery can take (retry schedule plus
        DLQ replay), or a late redelivery will run the handler again.
        """
        from django.db.models import Q

        from courier.consumer.django.models import InboxEntry

        cutoff = timezone.now() - older_than
        mine = Q(consumer=self.consumer) | Q(consumer__startswith=self.consumer + "/")
        entries = InboxEntry.objects.using(self.using).filter(mine, processed_at__lt=cutoff)
        deleted, _ = entries.delete()
        return int(deleted)
