"""plan_handoffs: which methods go to the retry topic, which to the DLQ, with what headers."""

from __future__ import annotations

import grpc
import pytest

from courier.broker.config import ConsumerConfig
from courier.broker.delivery import DeliveryOutcome
from courier.broker.handoff import SourceRecord, plan_handoffs, plan_invalid
from courier.broker.retry_headers import RetryState
from courier.events import EventEnvelope

from .kafka_helpers import broker_config, make_event

NOW = 1_800_000_000_000
A, B = "/p.v1.S/A", "/p.v1.S/B"


def consumer(max_retry_attempts: int = 2) -> ConsumerConfig:
    config = broker_config(
        {
            "svc": {
                "grpc-server-hostname": "localhost",
                "grpc-server-port": 1,
                "max-retry-attempts": max_retry_attempts,
                "batch-size": 1,
                "retry-topic": "svc_retry",
                "dlq-topic": "svc_dlq",
                "retry-delays": [1, 5],
                "distribution": [{"topic": "orders", "services": [A[1:], B[1:]]}],
            }
        }
    )
    return config.consumers["svc"]


def source(event: EventEnvelope | None = None) -> SourceRecord:
    event = event or make_event("orders", key="k1")
    return SourceRecord(
        "orders", 2, 41, event.kafka_key(), event.payload, tuple(event.kafka_headers())
    )


def outcome(method: str, code: grpc.StatusCode) -> DeliveryOutcome:
    return DeliveryOutcome(method, code, f"{code.name.lower()} details", calls=1)


def test_all_ok_writes_nothing() -> None:
    outcomes = [outcome(A, grpc.StatusCode.OK), outcome(B, grpc.StatusCode.ALREADY_EXISTS)]
    assert plan_handoffs(consumer(), source(), None, outcomes, NOW) == []


def test_first_failure_goes_to_the_retry_topic_for_the_failed_method_only() -> None:
    record = source()
    outcomes = [outcome(A, grpc.StatusCode.UNAVAILABLE), outcome(B, grpc.StatusCode.OK)]
    (plan,) = plan_handoffs(consumer(), record, None, outcomes, NOW)
    assert (plan.kind, plan.topic, plan.key, plan.value) == (
        "retry", "svc_retry", record.key, record.value,
    )  # fmt: skip
    state = RetryState.from_headers(plan.headers)
    assert state == plan.state
    assert state is not None
    assert state.failed_methods == (A,)
    assert state.attempt == 0
    assert state.due_at_ms == NOW + 1000
    assert (state.original_topic, state.original_partition, state.original_offset) == (
        "orders", 2, 41,
    )  # fmt: skip
    assert plan.headers[: len(record.headers)] == list(record.headers)


def test_dead_letter_and_retry_split_into_two_records() -> None:
    outcomes = [
        outcome(A, grpc.StatusCode.INTERNAL),
        outcome(B, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    retry, dead = plan_handoffs(consumer(), source(), None, outcomes, NOW)
    assert (retry.kind, retry.state.failed_methods) == ("retry", (A,))
    assert (dead.kind, dead.topic, dead.state.failed_methods) == ("dlq", "svc_dlq", (B,))
    assert dead.state.last_status == "INVALID_ARGUMENT"
    assert dead.state.dead_lettered_at_ms == NOW


@pytest.mark.parametrize(("attempt", "kind"), [(0, "retry"), (1, "dlq")])
def test_max_retry_attempts_counts_retry_topic_deliveries(attempt: int, kind: str) -> None:
    previous = RetryState.first_failure(
        consumer="svc", topic="orders", partition=2, offset=41, failed_methods=[A, B],
        last_status="UNAVAILABLE", last_error="x", due_at_ms=NOW - 5,
    )  # fmt: skip
    state = previous if attempt == 0 else previous.next_attempt(
        failed_methods=[A, B], last_status="UNAVAILABLE", last_error="x", due_at_ms=NOW
    )  # fmt: skip
    outcomes = [outcome(A, grpc.StatusCode.DEADLINE_EXCEEDED), outcome(B, grpc.StatusCode.OK)]
    (plan,) = plan_handoffs(consumer(max_retry_attempts=2), source(), state, outcomes, NOW)
    assert plan.kind == kind
    assert plan.state.failed_methods == (A,)
    assert plan.state.attempt == attempt + 1
    assert plan.state.last_status == "DEADLINE_EXCEEDED"
    if kind == "retry":
        assert plan.state.due_at_ms == NOW + 5000  # retry-delays[1] before delivery 2
    else:
        assert plan.state.dead_lettered_at_ms == NOW


def test_zero_retry_attempts_dead_letters_at_once() -> None:
    (plan,) = plan_handoffs(
        consumer(max_retry_attempts=0), source(), None,
        [outcome(A, grpc.StatusCode.UNAVAILABLE), outcome(B, grpc.StatusCode.UNAVAILABLE)], NOW,
    )  # fmt: skip
    assert plan.kind == "dlq"
    assert plan.state.failed_methods == (A, B)
    assert A in plan.state.last_error and B in plan.state.last_error


def test_invalid_record_goes_to_the_dlq_with_the_reason() -> None:
    record = SourceRecord("orders", 0, 7, None, b"x", (("content-type", b"y"),))
    plan = plan_invalid(consumer(), record, [A], "missing header 'ce_id'", NOW)
    assert plan.kind == "dlq"
    assert plan.state.last_status == "INVALID_ARGUMENT"
    assert plan.state.last_error == "missing header 'ce_id'"
    assert plan.headers[0] == ("content-type", b"y")
