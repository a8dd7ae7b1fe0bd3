"""Add the constant ``specversion`` column that Debezium copies into ``ce_specversion``."""

from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies: ClassVar[list[tuple[str, str]]] = [("courier_outbox", "0001_initial")]

    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.AddField(
            model_name="outboxevent",
            name="specversion",
            field=models.TextField(db_default="1.0", editable=False),
        ),
    ]
