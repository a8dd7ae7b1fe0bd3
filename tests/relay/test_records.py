"""Rows in every writer's shape read back into the same envelope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.events import EventEnvelope, uuid7
from courier.relay.records import InvalidOutboxRow, envelope_from_row, parse_timestamp

EVENT_ID = uuid7()
MOMENT = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
EXPECTED = EventEnvelope(
    id=str(EVENT_ID),
    type="shop.v1.OrderPlaced",
    source="shop",
    time=MOMENT,
    topic="shop.orders",
    payload=b"\x00\x01\xff",
    key="order-1",
    headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
)


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": EVENT_ID,
        "topic": "shop.orders",
        "key": "order-1",
        "type": "shop.v1.OrderPlaced",
        "source": "shop",
        "payload": b"\x00\x01\xff",
        "headers": {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
        "created_at": MOMENT,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    "changes",
    [
        {},  # psycopg2 on Postgres
        {
            "id": str(EVENT_ID),
            "payload": "\\x0001ff",  # pgoutput text
            "headers": '{"traceparent": "00-' + "a" * 32 + "-" + "b" * 16 + '-01"}',
            "created_at": "2026-01-02 03:04:05.12+00",
        },
        {
            "id": EVENT_ID.hex,
            "payload": memoryview(b"\x00\x01\xff"),  # Django on SQLite/MySQL
            "created_at": "2026-01-02 03:04:05.120000",
        },
        {"created_at": datetime(2026, 1, 2, 3, 4, 5, 120000)},  # naive UTC (MySQL DATETIME)
        {"created_at": "2026-01-02T03:04:05.12+00:00"},  # SQLite written by the table module
        {"created_at": datetime(2026, 1, 2, 0, 4, 5, 120000, tzinfo=timezone(-timedelta(hours=3)))},
        {"headers": b'{"traceparent": "00-' + b"a" * 32 + b"-" + b"b" * 16 + b'-01"}'},
    ],
)
def test_every_row_shape_gives_the_same_envelope(changes: dict[str, object]) -> None:
    assert envelope_from_row(_row(**changes)) == EXPECTED


def test_null_key_and_empty_headers() -> None:
    envelope = envelope_from_row(_row(key=None, headers="{}"))
    assert envelope.key is None
    assert dict(envelope.headers) == {}


def test_headers_that_cannot_be_sent_are_dropped() -> None:
    envelope = envelope_from_row(_row(headers={"ce_id": "forged", "bad name": "x", "ok": "1"}))
    assert dict(envelope.headers) == {"ok": "1"}


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "not-a-uuid"},
        {"topic": ""},
        {"payload": 5},
        {"created_at": "yesterday"},
        {"headers": "[1, 2]"},
        {"type": None},
    ],
)
def test_broken_rows_raise_with_the_row_id(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidOutboxRow) as info:
        envelope_from_row(_row(**changes))
    assert info.value.row_id == _row(**changes)["id"]


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["+00", "+00:00", "Z", "", "-03", "+05:30"]),
)
def test_postgres_text_timestamps_parse_exactly(moment: datetime, offset: str) -> None:
    hours, minutes = {
        "": (0, 0),
        "Z": (0, 0),
        "+00": (0, 0),
        "+00:00": (0, 0),
        "-03": (-3, 0),
        "+05:30": (5, 30),
    }[offset]
    zone = timezone(timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes))
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    assert parse_timestamp(text + offset) == moment


def test_uuid_forms() -> None:
    raw = uuid.uuid4()
    for form in (raw, str(raw), raw.hex, raw.bytes):
        assert envelope_from_row(_row(id=form)).id == str(raw)
