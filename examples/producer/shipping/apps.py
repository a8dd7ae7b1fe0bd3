from __future__ import annotations

from django.apps import AppConfig


class ShippingConfig(AppConfig):
    name = "examples.producer.shipping"
    label = "shipping"
    default_auto_field = "django.db.models.BigAutoField"
