"""Record -> row: envelopes fill the columns; anything else still lands, with the reason."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from courier.lake.decode import PayloadDecoder
from courier.lake.records import is_broker_copy, lake_row
from courier.lake.schema import COLUMNS, LAKE_SCHEMA, to_table

from .lake_helpers import Record, delivered_event, record_of

DECODER = PayloadDecoder.for_generated_code()


def _as_dict(values: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(COLUMNS, values, strict=True))


def test_an_envelope_fills_every_column() -> None:
    moment = datetime(2026, 3, 4, 23, 59, 59, 123456, tzinfo=UTC)
    event = delivered_event("packages.delivered", 3, moment)
    row = lake_row(record_of(event, 2, 41), DECODER)
    values = _as_dict(row.values)
    assert row.envelope_ok and row.decoded and row.day == date(2026, 3, 4)
    assert values["id"] == event.id and values["type"] == event.type
    assert values["source"] == "lake-tests" and values["time"] == moment
    assert values["key"] == "pkg-3" and values["topic"] == "packages.delivered"
    assert (values["partition"], values["offset"]) == (2, 41)
    assert values["headers"] == [("traceparent", event.headers["traceparent"])]
    assert values["payload"] == event.payload
    assert json.loads(values["payload_json"])["received_by"] == "person 3"  # type: ignore[arg-type]
    assert values["envelope_error"] is None and values["decode_error"] is None
    table = to_table({name: [value] for name, value in values.items()})
    assert table.schema == LAKE_SCHEMA and table.num_rows == 1


def test_a_record_without_ce_headers_lands_with_every_header_and_the_reason() -> None:
    record = Record("raw", 0, 7, b"\x00\x01", b"k\xff", [("x-trace", b"abc"), ("bad", b"\xfe")])
    row = lake_row(record, DECODER)
    values = _as_dict(row.values)
    assert not row.envelope_ok and not row.decoded
    assert values["id"] is None and values["type"] is None and values["time"] is None
    assert values["key"] == "k\\xff"
    assert values["headers"] == [("x-trace", "abc"), ("bad", "\\xfe")]
    assert values["payload"] == b"\x00\x01"
    assert "missing header 'ce_id'" in str(values["envelope_error"])
    assert row.day == date(2026, 1, 1)  # the Kafka timestamp's day
    to_table({name: [value] for name, value in values.items()})


def test_a_tombstone_lands_too() -> None:
    event = delivered_event("t", 1)
    record = record_of(event, 0, 0)
    record.value_ = None
    values = _as_dict(lake_row(record, DECODER).values)
    assert values["payload"] is None and "tombstone" in str(values["envelope_error"])


def test_an_unknown_type_keeps_the_event_with_null_json() -> None:
    event = delivered_event("t", 1)
    record = record_of(event, 0, 0)
    record.headers_ = [
        (name, b"acme.v1.Unknown" if name == "ce_type" else value)
        for name, value in record.headers_
    ]
    row = lake_row(record, DECODER)
    values = _as_dict(row.values)
    assert row.envelope_ok and not row.decoded
    assert values["id"] == event.id and values["payload_json"] is None
    assert values["decode_error"] == "unknown type 'acme.v1.Unknown'"


def test_broker_copies_are_recognised_by_their_bookkeeping_header() -> None:
    assert is_broker_copy([("ce_id", b"1"), ("courier-original-topic", b"orders")])
    assert is_broker_copy({"courier-original-topic": b"orders"})
    assert not is_broker_copy([("ce_id", b"1")])
    assert not is_broker_copy(None)
