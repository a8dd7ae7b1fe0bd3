"""DLQ records as the page shows them, replay requests, and the failure log (no Kafka)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Package

from courier.broker.dlq_records import DlqRecord
from courier.broker.retry_headers import RetryState
from courier.observability.admin.dlq_view import (
    AdminFilter,
    BadRequest,
    ReplayRequest,
    known_types_decoder,
    record_json,
)
from courier.observability.admin.failures import FailedCall, FailureLog


def dlq_record(
    *,
    type_name: str = "packages.v1.PackageDelivered",
    value: bytes = b"",
    status: str = "NOT_FOUND",
    partition: int = 0,
    offset: int = 5,
) -> DlqRecord:
    state = RetryState(
        attempt=2,
        due_at_ms=1_700_000_000_000,
        failed_methods=("/a.v1.S/M",),
        last_status=status,
        last_error="no such <thing>",
        original_topic="orders",
        original_partition=1,
        original_offset=42,
        consumer="svc",
        dead_lettered_at_ms=1_700_000_000_500,
    )
    headers = (("ce_id", b"id-1"), ("ce_type", type_name.encode()), ("ce_source", b"<src>"),
               ("x-raw", b"\xff\xfe"), ("x-none", None))  # fmt: skip
    return DlqRecord(topic="svc_dlq", partition=partition, offset=offset,
                     timestamp_ms=1_700_000_000_600, key=b"k-1", value=value,
                     headers=headers, state=state)  # fmt: skip


def test_record_json_decodes_a_known_payload() -> None:
    payload = PackageDelivered(package=Package(id="p-9"), received_by="<b>me</b>")
    shown = record_json(dlq_record(value=payload.SerializeToString()), known_types_decoder(), False)
    assert shown["payload"]["json"]["package"]["id"] == "p-9"
    assert shown["payload"]["json"]["received_by"] == "<b>me</b>"
    assert shown["payload"]["error"] is None
    assert shown["position"] == "0:5" and shown["id"] == "id-1" and shown["key"] == "k-1"
    assert shown["attempt"] == 2 and shown["failed_methods"] == ["/a.v1.S/M"]
    assert (shown["original_topic"], shown["original_partition"], shown["original_offset"]) == (
        "orders", 1, 42)  # fmt: skip
    assert shown["dead_lettered_at"] == "2023-11-14T22:13:20.5Z"
    assert ["x-raw", "\ufffd\ufffd"] in shown["headers"] and ["x-none", None] in shown["headers"]


def test_a_corrupt_payload_is_shown_as_hex() -> None:
    shown = record_json(dlq_record(value=b"\xff\xff\xff"), known_types_decoder(), True)
    assert shown["payload"]["json"] is None and "cannot decode" in shown["payload"]["error"]
    assert shown["payload"]["hex"] == "ffffff" and shown["replayed"] is True


def test_type_names_from_headers_never_import_modules() -> None:
    # `this` prints the Zen of Python when imported: a decoder that imported modules named by
    # ce_type would load it.
    sys.modules.pop("this", None)
    for name in ("this.Message", "os.path.Foo", "subprocess.Popen", "this"):
        shown = record_json(dlq_record(type_name=name, value=b"\x0a\x00"), known_types_decoder(),
                            False)  # fmt: skip
        assert shown["payload"]["json"] is None
        assert "unknown type" in (shown["payload"]["error"] or "")
    assert "this" not in sys.modules


def test_admin_filter_positions_and_statuses() -> None:
    record = dlq_record(status="INVALID_ARGUMENT", partition=1, offset=7)
    assert AdminFilter(positions=frozenset({(1, 7)})).matches(record)
    assert not AdminFilter(positions=frozenset({(0, 7)})).matches(record)
    assert AdminFilter(statuses=frozenset({"INVALID_ARGUMENT"})).matches(record)
    assert not AdminFilter(statuses=frozenset({"UNAVAILABLE"})).matches(record)
    assert not AdminFilter(statuses=frozenset({"INVALID_ARGUMENT"}),
                           types=frozenset({"other.v1.T"})).matches(record)  # fmt: skip
    assert AdminFilter().empty and not AdminFilter(error="x").empty


def test_replay_request_parsing() -> None:
    request = ReplayRequest.from_json(
        {"positions": ["0:1", "2:30"], "statuses": ["invalid_argument"], "dry_run": True,
         "limit": 5}
    )  # fmt: skip
    assert request.selection.positions == {(0, 1), (2, 30)}
    assert request.selection.statuses == {"INVALID_ARGUMENT"}
    assert request.dry_run and request.limit == 5 and not request.include_replayed
    assert ReplayRequest.from_json({"all": True}).selection.empty
    for bad in ({}, {"all": False}, {"positions": "0:1"}, {"positions": ["0-1"]},
                {"types": [1]}, {"limit": 0}, {"limit": True}, {"dry_run": "yes"},
                {"surprise": 1, "all": True}, [], "all"):  # fmt: skip
        with pytest.raises(BadRequest):
            ReplayRequest.from_json(bad)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = st.sampled_from(["positions", "event_ids", "types", "statuses", "error", "all",
                          "dry_run", "include_replayed", "limit"])  # fmt: skip


@given(st.one_of(JSON, st.dictionaries(FIELDS, JSON, max_size=5)))
def test_any_json_body_is_a_request_or_a_bad_request(body: Any) -> None:
    try:
        request = ReplayRequest.from_json(body)
    except BadRequest:
        return
    assert not request.selection.empty or body.get("all") is True


def test_failure_log_keeps_the_newest_per_consumer_from_many_threads() -> None:
    log = FailureLog(capacity=10)

    def fail(consumer: str) -> None:
        for n in range(500):
            log.record(FailedCall(consumer, str(n), "t", "/s/M", "UNAVAILABLE", "", 1, float(n)))

    threads = [threading.Thread(target=fail, args=(c,)) for c in ("a", "b", "a")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.total("a") == 1000 and log.total("b") == 500 and log.total("c") == 0
    recent = log.recent("b")
    assert [f.event_id for f in recent] == [str(n) for n in range(499, 489, -1)]
    assert len(log.recent("a")) == 10 and log.recent("c") == []
    assert recent[0].as_json()["status"] == "UNAVAILABLE"
