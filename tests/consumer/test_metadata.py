"""EventMetadata: reading the broker's gRPC metadata (DESIGN.md contract 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.consumer import EventMetadata, MissingEventMetadata, RejectEvent, event_metadata
from courier.consumer.errors import status_for_exception

BROKER_METADATA = (
    ("ce-id", "0190f6b1-7a4c-7cc3-9a1e-3f1d2b4c5d6e"),
    ("ce-type", "packages.v1.PackageDelivered"),
    ("ce-source", "packages-service"),
    ("ce-time", "2026-03-17T10:20:30.5Z"),
    ("courier-attempt", "3"),
    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("user-agent", "grpc-python/1.66"),
)


class _Context:
    """The part of a ServicerContext that event_metadata reads."""

    def __init__(self, metadata: object) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> object:
        return self._metadata


def test_reads_every_key_of_contract_4() -> None:
    event = event_metadata(_Context(BROKER_METADATA))
    assert event == EventMetadata(
        id="0190f6b1-7a4c-7cc3-9a1e-3f1d2b4c5d6e",
        type="packages.v1.PackageDelivered",
        source="packages-service",
        time=datetime(2026, 3, 17, 10, 20, 30, 500000, tzinfo=UTC),
        attempt=3,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate=None,
    )
    assert event.is_redelivery


def test_reads_grpc_metadatum_objects_and_offsets() -> None:
    # grpc hands metadata as objects with .key/.value; times may carry an offset.
    items = [SimpleNamespace(key=k, value=v) for k, v in BROKER_METADATA]
    items[3] = SimpleNamespace(key="ce-time", value="2026-03-17T07:20:30-03:00")
    event = event_metadata(_Context(items))
    assert event.time == datetime(2026, 3, 17, 10, 20, 30, tzinfo=UTC)
    assert event.time.tzinfo is UTC


def test_missing_metadata_names_every_missing_key() -> None:
    with pytest.raises(MissingEventMetadata) as caught:
        event_metadata(_Context((("ce-id", "x"), ("user-agent", "grpcurl"))))
    assert caught.value.problems == [
        "missing 'ce-type'",
        "missing 'ce-source'",
        "missing 'ce-time'",
        "missing 'courier-attempt'",
    ]


def test_missing_metadata_is_rejected_not_retried() -> None:
    # A call without metadata did not come from the broker: dead-letter, never retry.
    with pytest.raises(MissingEventMetadata) as caught:
        event_metadata(_Context(None))
    assert isinstance(caught.value, RejectEvent)
    assert status_for_exception(caught.value)[0] is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("courier-attempt", "0", "courier-attempt must be a positive integer: '0'"),
        ("courier-attempt", "two", "courier-attempt must be a positive integer: 'two'"),
        ("ce-time", "yesterday", "ce-time: not an RFC 3339 timestamp: 'yesterday'"),
    ],
)
def test_malformed_values_are_named(key: str, value: str, problem: str) -> None:
    metadata = [(k, value if k == key else v) for k, v in BROKER_METADATA]
    with pytest.raises(MissingEventMetadata) as caught:
        event_metadata(_Context(metadata))
    assert caught.value.problems == [problem]


_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)


@given(
    id=_text,
    type=_text,
    source=_text,
    time=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
    attempt=st.integers(min_value=1, max_value=10_000),
    traceparent=st.none() | _text,
    tracestate=st.none() | _text,
)
def test_broker_metadata_round_trips(
    id: str,
    type: str,
    source: str,
    time: datetime,
    attempt: int,
    traceparent: str | None,
    tracestate: str | None,
) -> None:
    sent = EventMetadata(id, type, source, time, attempt, traceparent, tracestate)
    assert EventMetadata.from_grpc_metadata(sent.grpc_metadata()) == sent
