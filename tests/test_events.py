"""The event envelope and its CloudEvents header mapping (contract 2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.events import (
    ENVELOPE_HEADERS,
    EventEnvelope,
    InvalidEventHeaders,
    format_time,
    parse_time,
    uuid7,
)

header_names = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z").filter(
    lambda name: name not in ENVELOPE_HEADERS
)
text = st.text(min_size=1, max_size=40)
aware_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)
envelopes = st.builds(
    EventEnvelope,
    id=st.uuids().map(str),
    type=st.from_regex(r"\A[a-z]+(\.[a-z0-9]+)*\.[A-Z][A-Za-z0-9]*\Z"),
    source=text,
    time=aware_times,
    topic=st.from_regex(r"\A[a-zA-Z0-9._-]{1,50}\Z"),
    payload=st.binary(max_size=200),
    key=st.none() | st.text(max_size=30),
    headers=st.dictionaries(header_names, st.text(max_size=30), max_size=4),
)


@given(envelopes)
def test_kafka_round_trip_keeps_every_field(envelope: EventEnvelope) -> None:
    back = EventEnvelope.from_kafka(
        envelope.topic, envelope.kafka_key(), envelope.payload, envelope.kafka_headers()
    )
    assert back == envelope


@given(envelopes)
def test_headers_are_cloudevents_binary_mode(envelope: EventEnvelope) -> None:
    headers = dict(envelope.kafka_headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == envelope.id.encode()
    assert headers["ce_type"] == envelope.type.encode()
    assert headers["ce_source"] == envelope.source.encode()
    assert headers["content-type"] == b"application/protobuf"
    assert parse_time(headers["ce_time"].decode()) == envelope.time
    for name, value in envelope.headers.items():
        assert headers[name] == value.encode()


@given(aware_times)
def test_time_format_round_trips_and_ends_in_z(moment: datetime) -> None:
    text = format_time(moment)
    assert text.endswith("Z")
    assert not text.split("Z")[0].endswith(".")
    assert parse_time(text) == moment


def test_time_format_matches_debezium_zoned_timestamp() -> None:
    assert format_time(datetime(2026, 11, 29, 2, 3, 4, tzinfo=UTC)) == "2026-11-29T02:03:04Z"
    assert (
        format_time(datetime(2026, 11, 29, 2, 3, 4, 500, tzinfo=UTC)) == "2026-11-29T02:03:04.0005Z"
    )
    offset = timezone(timedelta(hours=-3))
    assert format_time(datetime(2026, 11, 29, 0, 0, tzinfo=offset)) == "2026-11-29T03:00:00Z"


def test_parse_time_accepts_offsets_and_nanoseconds() -> None:
    assert parse_time("2026-11-29T00:00:00.123456789-03:00") == datetime(
        2026, 11, 29, 3, 0, 0, 123456, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("29/11/2026")


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7(unix_ms=ms) for ms in (1, 2, 1_700_000_000_000, (1 << 48) - 1)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids, key=lambda u: u.bytes)
    assert len({uuid7() for _ in range(1000)}) == 1000


def test_missing_and_bad_headers_are_all_reported() -> None:
    with pytest.raises(InvalidEventHeaders) as info:
        EventEnvelope.from_kafka(
            "t", b"k", b"v", [("ce_specversion", b"0.3"), ("ce_time", b"yesterday")]
        )
    problems = " | ".join(info.value.problems)
    for expected in ("ce_id", "ce_source", "ce_type", "0.3", "yesterday"):
        assert expected in problems


def test_non_utf8_header_and_tombstone_are_rejected() -> None:
    good = EventEnvelope(
        id="1", type="a.B", source="s", time=datetime.now(UTC), topic="t", payload=b""
    )
    headers = [*good.kafka_headers(), ("traceparent", b"\xff\xfe")]
    with pytest.raises(InvalidEventHeaders, match="not UTF-8"):
        EventEnvelope.from_kafka("t", None, b"x", headers)
    with pytest.raises(InvalidEventHeaders, match="tombstone"):
        EventEnvelope.from_kafka("t", None, None, good.kafka_headers())


def test_extra_headers_cannot_override_the_envelope() -> None:
    with pytest.raises(ValueError, match="ce_type"):
        EventEnvelope(
            id="1",
            type="a.B",
            source="s",
            time=datetime.now(UTC),
            topic="t",
            payload=b"",
            headers={"ce_type": "evil"},
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        EventEnvelope(
            id="1", type="a.B", source="s", time=datetime(2026, 1, 1), topic="t", payload=b""
        )
