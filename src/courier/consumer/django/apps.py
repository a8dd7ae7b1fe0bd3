"""Django app configuration of the consumer inbox."""

from __future__ import annotations

from django.apps import AppConfig


class CourierConsumerConfig(AppConfig):  # type: ignore[misc]
    """The ``courier_consumer`` app: the ``courier_inbox`` table."""

    name = "courier.consumer.django"
    label = "courier_consumer"
    verbose_name = "Courier consumer inbox"
    default_auto_field = "django.db.models.BigAutoField"
