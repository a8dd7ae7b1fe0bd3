"""Kafka Connect config for Debezium 3.6.1 that ships the outbox exactly as Courier's relay.

A team that already runs Debezium can point it at the same ``courier_outbox`` table and get
the same Kafka records (contract 2): topic from ``topic``, key from ``key``, value = the raw
``payload`` bytes, and the CloudEvents headers::

    ce_id, ce_source, ce_type, ce_time   <- table.fields.additional.placement (columns)
    ce_specversion                       <- the same, from the constant `specversion` column
    content-type=application/protobuf    <- an InsertHeader SMT (constant)

``ce_specversion`` cannot come from ``InsertHeader``: Kafka Connect parses the literal ``1.0``
as a number and writes the header ``1``, which no CloudEvents reader accepts. The outbox
table therefore carries a ``specversion`` column whose database default is ``'1.0'``.

The Outbox Event Router always adds an ``id`` header; a ``DropHeaders`` SMT removes it, and
``extended.headers.enabled=false`` keeps Debezium 3's ``__debezium.context.*`` headers off.

Known differences from ``courier relay run`` (checked by tests/relay/test_debezium.py):

- the ``headers`` column (``traceparent`` and other extra headers) is not sent: the router
  can copy a column into one header, not spread a JSON object over several;
- header order: Debezium writes ``ce_id, ce_source, ce_type, ce_time, ce_specversion,
  content-type``; the relay writes ``ce_specversion`` first. Header order carries no meaning
  in the CloudEvents Kafka binding, and consumers read headers by name;
- the record timestamp is Debezium's processing time, the relay's is its send time;
- a record without a key may land on another partition (each producer picks freely);
  keyed records land on the same partition (murmur2 on both sides);
- ``ce_time``: Debezium 3.6.1 prints all six fraction digits (``...07.120000Z``),
  :func:`courier.events.format_time` trims trailing zeros (``...07.12Z``): same instant.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

DEBEZIUM_VERSION = "3.6.1.Final"


def connector_config(
    *,
    database_url: str,
    table: str = "courier_outbox",
    slot: str = "courier_debezium",
    publication: str = "courier_debezium_pub",
    topic_prefix: str = "courier",
) -> dict[str, str]:
    """The connector's ``config`` map (all values strings, as Kafka Connect expects)."""
    parts = urlsplit(database_url)
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("Debezium's outbox connector here is for Postgres (postgresql:// URL)")
    schema, _, name = table.rpartition(".")
    qualified = f"{schema or 'public'}.{name}"
    config: dict[str, str] = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": parts.hostname or "127.0.0.1",
        "database.port": str(parts.port or 5432),
        "database.user": unquote(parts.username or "postgres"),
        "database.dbname": parts.path.lstrip("/") or "postgres",
        "topic.prefix": topic_prefix,
        "table.include.list": qualified,
        "slot.name": slot,
        "publication.name": publication,
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "no_data",
        "tombstones.on.delete": "false",
        # Debezium 3 otherwise adds __debezium.context.* headers to every record.
        "extended.headers.enabled": "false",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "io.debezium.converters.BinaryDataConverter",
        "value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.delegate.converter.type.schemas.enable": "false",
        "header.converter": "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "transforms": "outbox,dropid,contenttype",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.table.field.event.id": "id",
        "transforms.outbox.table.field.event.key": "key",
        "transforms.outbox.table.field.event.payload": "payload",
        "transforms.outbox.route.by.field": "topic",
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        "transforms.outbox.table.fields.additional.placement": (
            "id:header:ce_id,source:header:ce_source,type:header:ce_type,"
            "created_at:header:ce_time,specversion:header:ce_specversion"
        ),
        "transforms.outbox.table.expand.json.payload": "false",
        "transforms.dropid.type": "org.apache.kafka.connect.transforms.DropHeaders",
        "transforms.dropid.headers": "id",
        "transforms.contenttype.type": "org.apache.kafka.connect.transforms.InsertHeader",
        "transforms.contenttype.header": "content-type",
        "transforms.contenttype.value.literal": "application/protobuf",
    }
    if parts.password:
        config["database.password"] = unquote(parts.password)
    return config


def connector_request(name: str, config: dict[str, str]) -> dict[str, Any]:
    """The body for ``POST /connectors``: ``{"name": ..., "config": {...}}``."""
    return {"name": name, "config": config}
