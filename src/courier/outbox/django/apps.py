"""The Django app config for the outbox."""

from __future__ import annotations

from django.apps import AppConfig


class CourierOutboxConfig(AppConfig):  # type: ignore[misc]
    """``courier.outbox.django``: the outbox model and its migration."""

    name = "courier.outbox.django"
    label = "courier_outbox"
    verbose_name = "Courier outbox"
    default_auto_field = "django.db.models.BigAutoField"
