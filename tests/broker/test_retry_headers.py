"""Retry/DLQ bookkeeping headers: round trip, merging with the event's own headers, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.broker.retry_headers import (
    BOOKKEEPING_HEADERS,
    H_ATTEMPT,
    H_DEAD_LETTERED_AT,
    H_DUE_AT,
    H_LAST_ERROR,
    MAX_ERROR_BYTES,
    InvalidRetryHeaders,
    RetryState,
    strip_bookkeeping,
    truncate_error,
    with_retry_state,
)

_method = st.from_regex(
    r"/[a-z][a-z0-9]{0,5}(\.[a-z][a-z0-9]{0,5}){0,2}\.[A-Z][A-Za-z]{0,8}/[A-Z][A-Za-z0-9_]{0,10}",
    fullmatch=True,
)
_name = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)
_ms = st.integers(min_value=0, max_value=2**53)

states = st.builds(
    RetryState,
    consumer=_name,
    attempt=st.integers(min_value=0, max_value=10_000),
    due_at_ms=_ms,
    failed_methods=st.lists(_method, max_size=5).map(tuple),
    last_status=st.sampled_from(["UNAVAILABLE", "INTERNAL", "INVALID_ARGUMENT", "UNKNOWN"]),
    last_error=st.text(max_size=1500),
    original_topic=st.from_regex(r"[a-zA-Z0-9._-]{1,60}", fullmatch=True),
    original_partition=st.integers(min_value=0, max_value=10_000),
    original_offset=st.integers(min_value=0, max_value=2**62),
    dead_lettered_at_ms=st.none() | _ms,
)

_ce_headers = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"0190f3c2-7b5e-7cc0-8d7e-1f2a3b4c5d6e"),
    ("ce_source", b"packages"),
    ("ce_type", b"packages.v1.PackageDelivered"),
    ("ce_time", b"2026-01-02T03:04:05.12Z"),
    ("content-type", b"application/protobuf"),
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
]


def _state(**overrides: object) -> RetryState:
    values: dict[str, object] = {
        "consumer": "service-b",
        "attempt": 2,
        "due_at_ms": 1_767_323_045_000,
        "failed_methods": ("/events.v1.EventsAPI/EndpointC",),
        "last_status": "UNAVAILABLE",
        "last_error": "connection refused",
        "original_topic": "event_x",
        "original_partition": 1,
        "original_offset": 42,
    }
    values.update(overrides)
    return RetryState(**values)  # type: ignore[arg-type]


@given(states)
def test_round_trip_through_headers(state: RetryState) -> None:
    assert RetryState.from_headers(state.to_headers()) == state


@given(states)
def test_merge_keeps_event_headers_and_replaces_bookkeeping(state: RetryState) -> None:
    old = _state(attempt=7, dead_lettered_at_ms=5)
    first = with_retry_state(_ce_headers, old)
    second = with_retry_state(first, state)
    assert second[: len(_ce_headers)] == _ce_headers
    names = [name for name, _ in second]
    assert len(names) == len(set(names)), "no bookkeeping header is duplicated"
    assert RetryState.from_headers(second) == state
    assert strip_bookkeeping(second) == _ce_headers


@given(st.text(max_size=3000))
def test_error_truncated_to_one_kib_on_character_boundary(text: str) -> None:
    cut = truncate_error(text)
    assert len(cut.encode("utf-8")) <= MAX_ERROR_BYTES
    if len(text.encode("utf-8")) <= MAX_ERROR_BYTES:
        assert cut == text
    else:
        assert cut.endswith("…")
        assert text.startswith(cut[:-1])


def test_long_error_is_truncated_in_state() -> None:
    state = _state(last_error="é" * 2000)
    (value,) = [v for n, v in state.to_headers() if n == H_LAST_ERROR]
    assert len(value) <= MAX_ERROR_BYTES
    value.decode("utf-8")


def test_absent_bookkeeping_is_none() -> None:
    assert RetryState.from_headers(_ce_headers) is None
    assert RetryState.from_headers(None) is None
    assert RetryState.from_headers([]) is None


def test_partial_bookkeeping_is_an_error_naming_missing_headers() -> None:
    with pytest.raises(InvalidRetryHeaders) as info:
        RetryState.from_headers([*_ce_headers, (H_ATTEMPT, b"1")])
    assert "missing header 'courier-due-at'" in str(info.value)
    assert "missing header 'courier-consumer'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        (H_ATTEMPT, b"-1", "'courier-attempt' must be an integer >= 0"),
        (H_ATTEMPT, b"two", "'courier-attempt' must be an integer >= 0, got 'two'"),
        (H_DUE_AT, b"2026-01-01T00:00:00Z", "'courier-due-at' must be an integer"),
        (H_DUE_AT, b"\xff\xfe", "'courier-due-at' is not UTF-8"),
        (H_DEAD_LETTERED_AT, b"1.5", "'courier-dead-lettered-at' must be an integer"),
        ("courier-consumer", b"", "consumer must not be empty"),
    ],
)
def test_malformed_header_is_a_clear_error(name: str, value: bytes, fragment: str) -> None:
    headers = [(n, v) for n, v in _state().to_headers() if n != name] + [(name, value)]
    with pytest.raises(InvalidRetryHeaders) as info:
        RetryState.from_headers(headers)
    assert fragment in str(info.value)


def test_last_header_wins_when_repeated() -> None:
    headers = [*_state().to_headers(), (H_ATTEMPT, b"9")]
    state = RetryState.from_headers(headers)
    assert state is not None and state.attempt == 9


def test_hops() -> None:
    first = RetryState.first_failure(
        consumer="service-a",
        topic="event_y",
        partition=0,
        offset=10,
        failed_methods=["/p.S/A"],
        last_status="UNAVAILABLE",
        last_error="down",
        due_at_ms=1000,
    )
    assert first.attempt == 0
    second = first.next_attempt(
        failed_methods=["/p.S/A"], last_status="INTERNAL", last_error="boom", due_at_ms=6000
    )
    assert (second.attempt, second.last_status, second.original_offset) == (1, "INTERNAL", 10)
    dead = second.dead_lettered(at_ms=9000)
    assert dead.dead_lettered_at == datetime.fromtimestamp(9, tz=UTC)
    assert H_DEAD_LETTERED_AT in dict(dead.to_headers())
    replayed = dead.for_replay(due_at_ms=10_000)
    assert (replayed.attempt, replayed.dead_lettered_at_ms) == (0, None)
    assert replayed.failed_methods == ("/p.S/A",)
    assert replayed.due_in(at_ms=9_000) == 1.0
    assert H_DEAD_LETTERED_AT not in dict(replayed.to_headers())


def test_invalid_state_rejected() -> None:
    with pytest.raises(ValueError, match="failed method"):
        _state(failed_methods=("/a/B,/c/D",))
    with pytest.raises(ValueError, match="attempt must be an integer"):
        _state(attempt=-1)


def test_bookkeeping_names_are_the_documented_ones() -> None:
    assert {name for name, _ in _state(dead_lettered_at_ms=1).to_headers()} == BOOKKEEPING_HEADERS
