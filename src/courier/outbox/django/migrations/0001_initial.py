"""Create the outbox table (contract 1)."""

from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models

from courier.outbox.django.models import outbox_table_name


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.CreateModel(
            name="OutboxEvent",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("topic", models.TextField()),
                ("key", models.TextField(null=True)),
                ("type", models.TextField()),
                ("source", models.TextField()),
                ("payload", models.BinaryField()),
                ("headers", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(db_index=True)),
            ],
            options={"db_table": outbox_table_name(), "verbose_name": "outbox event"},
        ),
    ]
