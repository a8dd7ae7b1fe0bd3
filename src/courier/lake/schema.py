"""The Arrow schema of every lake file, and the columns a sink buffer fills.

One row is one Kafka record. Valid events fill the envelope columns from their
CloudEvents headers; a record that is not an envelope still lands (nothing is lost), with
null ``id``/``type``/``source``/``time`` and the reason in ``envelope_error``.

=================  ===========================  =============================================
column             type                         meaning
=================  ===========================  =============================================
``id``             string                       ``ce_id`` (UUIDv7); null if not an envelope
``type``           string                       ``ce_type``, the full protobuf message name
``source``         string                       ``ce_source``, the producing service
``time``           timestamp[us, UTC]           ``ce_time``
``key``            string                       record key (UTF-8; undecodable bytes escaped)
``topic``          string                       Kafka topic
``partition``      int32                        Kafka partition
``offset``         int64                        Kafka offset
``kafka_time``     timestamp[ms, UTC]           the record's Kafka timestamp
``headers``        map<string, string>          extra headers (``traceparent``, ...); for a
                                                non-envelope record, every header
``payload``        binary                       the record value, unchanged
``payload_json``   string                       the payload decoded to JSON through the
                                                protobuf descriptors; null when the type is
                                                unknown or the bytes do not parse
``envelope_error`` string                       why the record is not an envelope, else null
``decode_error``   string                       why ``payload_json`` is null, else null
=================  ===========================  =============================================

``date`` (the ``date=`` directory) is not stored in the file; DuckDB reads it from the path.
"""

from __future__ import annotations

import pyarrow as pa

LAKE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("type", pa.string()),
        pa.field("source", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("key", pa.string()),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kafka_time", pa.timestamp("ms", tz="UTC")),
        pa.field("headers", pa.map_(pa.string(), pa.string())),
        pa.field("payload", pa.binary()),
        pa.field("payload_json", pa.string()),
        pa.field("envelope_error", pa.string()),
        pa.field("decode_error", pa.string()),
    ]
)

COLUMNS: tuple[str, ...] = tuple(LAKE_SCHEMA.names)


def empty_columns() -> dict[str, list[object]]:
    """A fresh column-wise buffer: one list per column of :data:`LAKE_SCHEMA`."""
    return {name: [] for name in COLUMNS}


def to_table(columns: dict[str, list[object]]) -> pa.Table:
    """The buffered rows as an Arrow table of :data:`LAKE_SCHEMA`.

    ``headers`` values are lists of ``(name, value)`` pairs, the form Arrow maps take.
    """
    return pa.Table.from_pydict(columns, schema=LAKE_SCHEMA)
