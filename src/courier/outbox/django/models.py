"""The outbox row as a Django model (contract 1).

On Postgres the migration produces exactly the contract's types (uuid, text, bytea, jsonb,
timestamptz). On SQLite and MySQL Django stores the UUID as 32 hex characters and JSON as
text; the polling relay reads both forms.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from courier.settings import DEFAULT_OUTBOX_TABLE


def outbox_table_name() -> str:
    """The outbox table: the ``COURIER_OUTBOX_TABLE`` setting, else ``courier_outbox``."""
    return str(getattr(settings, "COURIER_OUTBOX_TABLE", DEFAULT_OUTBOX_TABLE))


class OutboxEvent(models.Model):  # type: ignore[misc]
    """One event waiting in the outbox. Written by ``build_event(...).save()``, never updated."""

    id = models.UUIDField(primary_key=True)
    topic = models.TextField()
    key = models.TextField(null=True)
    type = models.TextField()
    source = models.TextField()
    payload = models.BinaryField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_index=True)
    # Constant for Debezium's ce_specversion header; the database fills it.
    specversion = models.TextField(db_default="1.0", editable=False)

    class Meta:
        app_label = "courier_outbox"
        db_table = outbox_table_name()
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.type} {self.id} -> {self.topic}"
