"""delivery_log: one line per failed method with where it goes next, never the payload."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from courier.broker.delivery import delivery_request
from courier.broker.delivery_log import (
    DLQ,
    MESSAGE,
    RETRY_IN_MEMORY,
    RETRY_TOPIC,
    handoff_action,
    log_final_outcomes,
    log_in_memory_retry,
)
from courier.broker.handoff import plan_handoffs
from courier.observability.logging import JsonFormatter

from .kafka_helpers import make_event
from .test_handoff import NOW, A, B, consumer, outcome, source

SECRET = b"\x0a\x05p-123-SECRET-PAYLOAD"


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.msg == MESSAGE]


def test_each_failed_method_is_one_line_with_its_destination(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="courier.broker")
    event = make_event("orders", key="k1", payload=SECRET)
    record = source(event)
    outcomes = [
        outcome(A, grpc.StatusCode.UNAVAILABLE),
        outcome(B, grpc.StatusCode.INVALID_ARGUMENT),
        outcome("/p.v1.S/C", grpc.StatusCode.OK),
    ]
    plans = plan_handoffs(consumer(), record, None, outcomes, NOW)
    log_final_outcomes("svc", delivery_request(event, 1), record, outcomes, plans)
    lines = _lines(caplog)
    assert [(ln["method"], ln["status"], ln["action"]) for ln in lines] == [
        (A, "UNAVAILABLE", RETRY_TOPIC), (B, "INVALID_ARGUMENT", DLQ),
    ]  # fmt: skip
    for line in lines:
        assert line["event_id"] == event.id and line["event_type"] == event.type
        assert (line["consumer"], line["attempt"], line["calls"]) == ("svc", 1, 1)
        assert (line["topic"], line["partition"], line["offset"]) == ("orders", 2, 41)
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "SECRET-PAYLOAD" not in text and repr(SECRET) not in text


def test_spent_retries_go_to_the_dlq() -> None:
    outcomes = [outcome(A, grpc.StatusCode.UNAVAILABLE)]
    state = plan_handoffs(consumer(1), source(), None, outcomes, NOW)[0].state
    plans = plan_handoffs(consumer(1), source(), state, outcomes, NOW)
    assert handoff_action(A, plans) == DLQ


def test_in_memory_retry_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="courier.broker")
    event = make_event("orders", payload=SECRET)
    log_in_memory_retry("svc", A, delivery_request(event, 3), grpc.StatusCode.UNAVAILABLE, "db", 2)
    (line,) = _lines(caplog)
    assert (line["action"], line["attempt"], line["calls"], line["error"]) == (
        RETRY_IN_MEMORY, 3, 2, "db",
    )  # fmt: skip
    assert "topic" not in line
