"""The inbox row: one per (consumer, event id) processed."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from courier.consumer.inbox import INBOX_TABLE, KEY_LENGTH


class InboxEntry(models.Model):  # type: ignore[misc]
    """An event a consumer has processed (see :mod:`courier.consumer.inbox`)."""

    pk = models.CompositePrimaryKey("consumer", "event_id")
    consumer = models.CharField(max_length=KEY_LENGTH)
    event_id = models.CharField(max_length=KEY_LENGTH)
    processed_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = INBOX_TABLE
        # Same index name as the raw DDL and SQLAlchemy's table, so any of them can create it.
        indexes = [  # noqa: RUF012 - Django reads Meta as plain class attributes
            models.Index(fields=["processed_at"], name=f"{INBOX_TABLE}_processed_at")
        ]
        verbose_name = "inbox entry"
        verbose_name_plural = "inbox entries"

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_id}"
