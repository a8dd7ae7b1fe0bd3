"""The admin API on a real broker, real Kafka and real gRPC consumers.

The breaker of a consumer that answers UNAVAILABLE shows as open with its failed calls;
the DLQ of a consumer that answers INVALID_ARGUMENT lists its events with the bookkeeping
headers and the payload decoded; a replay by position, then one by status, bring them back,
and the consumer (accepting now) receives each exactly once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from .scenario import MARKUP, SVC, TOKEN, AdminScenario, admin_scenario, json_request

pytestmark = pytest.mark.integration


def call(
    scenario: AdminScenario, path: str, body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    return json_request(scenario.url.rstrip("/") + path, body, token)


def eventually(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def consumer(scenario: AdminScenario, name: str) -> dict[str, Any]:
    status, body = call(scenario, "/api/consumers", token=None)
    assert status == 200
    return next(c for c in body["consumers"] if c["name"] == name)


def test_admin_api_on_a_running_broker(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    with admin_scenario(bootstrap_servers, unique) as s:
        # The consumer that is down: breaker open, its failed calls listed, nothing lost.
        down = eventually(
            "the breaker to open",
            lambda: (c := consumer(s, s.down_name))["breaker"] == "open" and c,
        )
        assert down["topics"] and down["dlq_topic"] == f"{s.down_name}_dlq"
        assert {f["status"] for f in down["failures"]} == {"UNAVAILABLE"}
        assert {f["event_id"] for f in down["failures"]} <= {e.id for e in s.down_events}
        assert all(f["method"] == f"/{SVC}/Handle" for f in down["failures"])
        kinds = {p["kind"] for p in down["partitions"]}
        assert kinds == {"distribution", "retry"}, down["partitions"]
        assert all(p["paused"] for p in down["partitions"])  # paused while open
        assert down["in_flight"] == len(s.down_events)

        # The picky consumer: every event dead-lettered, the DLQ browsable.
        dlq_path = f"/api/consumers/{s.picky_name}/dlq"
        listed = eventually(
            "3 events in the DLQ",
            lambda: len((b := call(s, dlq_path, token=None)[1])["events"]) == 3 and b,
        )
        assert listed["total"] == 3 and listed["topic"] == f"{s.picky_name}_dlq"
        by_id = {e["id"]: e for e in listed["events"]}
        assert set(by_id) == {e.id for e in s.picky_events}
        first = by_id[s.picky_events[0].id]
        assert first["last_status"] == "INVALID_ARGUMENT"
        assert first["last_error"] == "received_by <b>must</b> be a name"
        assert first["failed_methods"] == [f"/{SVC}/Handle"]
        assert first["original_topic"] == s.picky_events[0].topic
        assert first["replayed"] is False
        decoded = first["payload"]["json"]
        assert decoded["package"]["id"] == "pkg-0" and decoded["received_by"] == MARKUP
        headers = dict(first["headers"])
        assert headers["x-note"] == MARKUP and headers["ce_id"] == s.picky_events[0].id
        assert headers["courier-last-status"] == "INVALID_ARGUMENT"
        assert consumer(s, s.picky_name)["breaker"] == "closed"
        assert call(s, dlq_path + "?status=UNAVAILABLE", token=None)[1]["events"] == []

        # Replays need the token.
        replay = f"/api/consumers/{s.picky_name}/dlq/replay"
        assert call(s, replay, {"all": True}, token=None)[0] == 401
        assert call(s, replay, {"all": True}, token="wrong")[0] == 403

        s.picky_rejects.clear()
        status, preview = call(s, replay, {"positions": [first["position"]], "dry_run": True})
        assert status == 200 and preview["replayed"] == 0
        assert [e["id"] for e in preview["events"]] == [first["id"]]
        time.sleep(1.0)
        assert not s.picky_server.delivered("Handle")  # a dry run sends nothing

        status, done = call(s, replay, {"positions": [first["position"]]})
        assert status == 200 and done["replayed"] == 1, done
        s.picky_server.wait_for(
            lambda: first["id"] in s.picky_server.delivered("Handle"), 30, "the replayed event"
        )
        assert eventually(
            "the DLQ to show it replayed",
            lambda: {e["id"]: e for e in call(s, dlq_path, token=None)[1]["events"]}[first["id"]][
                "replayed"
            ],
        )

        # A filtered set: the one replayed already is skipped.
        status, rest = call(s, replay, {"statuses": ["INVALID_ARGUMENT"]})
        assert status == 200 and rest["replayed"] == 2 and rest["already_replayed"] == 1, rest
        s.picky_server.wait_for(
            lambda: set(s.picky_server.delivered("Handle")) == {e.id for e in s.picky_events},
            30,
            "every replayed event",
        )
        assert all(n == 1 for n in s.picky_server.delivered("Handle").values())
        replayed_calls = [c for c in s.picky_server.calls_to("Handle") if c.code.name == "OK"]
        assert all(c.attempt >= 1 for c in replayed_calls)
