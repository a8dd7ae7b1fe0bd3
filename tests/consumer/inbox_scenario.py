"""One redelivery scenario run against each inbox backend (SQLAlchemy in-process, Django in a
subprocess), through real gRPC deliveries made by courier.consumer.testing.

``record(event_id, handler)`` writes a business row in the handler's transaction;
``stored(event_id)`` counts the committed rows in a fresh connection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier.consumer import Inbox, RetryLater, event_metadata, idempotent
from courier.consumer.testing import running


def make_service_a(inbox: Inbox, record: Callable[[str, str], None]) -> Any:
    """The article's service-a: EndpointA and EndpointB both get every event of its topic."""
    runs: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def handle(handler: str, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        event = event_metadata(context)
        with lock:
            runs[(handler, event.id)] += 1
        record(event.id, handler)
        if request.received_by == "fail-first" and event.attempt == 1:
            raise RetryLater("warehouse API down")  # after the write: it must roll back
        if request.received_by == "slow":
            time.sleep(0.5)  # hold the claim while duplicates arrive
        return Empty()

    class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
        @idempotent(inbox)
        def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
            return handle("EndpointA", request, context)

        @idempotent(inbox, on_duplicate=Empty)
        def EndpointB(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
            return handle("EndpointB", request, context)

    servicer = ServiceA()
    servicer.runs = runs  # type: ignore[attr-defined]
    return servicer


def run_scenario(
    inbox: Inbox, record: Callable[[str, str], None], stored: Callable[[str], int]
) -> dict[str, Any]:
    """Deliver, redeliver, fail-then-retry and race duplicates; return what was observed."""
    servicer = make_service_a(inbox, record)
    seen: dict[str, Any] = {}
    with running(servicer) as consumer:

        def send(method: str, event_id: str, attempt: int = 1, note: str = "") -> str:
            message = events_pb2.PackageDelivered(received_by=note)
            message.package.id = f"pkg-{event_id}"
            result = consumer.deliver(method, message, event_id=event_id, attempt=attempt)
            return result.code.name

        seen["first"] = send("EndpointA", "e1")
        seen["redelivered"] = send("EndpointA", "e1", attempt=2)
        seen["other_method"] = send("EndpointB", "e1")
        seen["other_method_redelivered"] = send("EndpointB", "e1", attempt=2)
        seen["fail_first"] = send("EndpointA", "e2", note="fail-first")
        seen["stored_after_failure"] = stored("e2")
        seen["fail_first_retried"] = send("EndpointA", "e2", attempt=2, note="fail-first")
        seen["fail_first_again"] = send("EndpointA", "e2", attempt=3, note="fail-first")
        with ThreadPoolExecutor(max_workers=4) as pool:
            racing = pool.map(
                lambda n: send("EndpointA", "e3", attempt=n, note="slow"), [1, 2, 3, 4]
            )
            seen["racing"] = sorted(racing)
    seen["runs"] = {f"{h}:{e}": n for (h, e), n in sorted(servicer.runs.items())}
    seen["stored"] = {event_id: stored(event_id) for event_id in ("e1", "e2", "e3")}
    return seen


EXPECTED = {
    "first": "OK",
    "redelivered": "ALREADY_EXISTS",  # acknowledged, handler not run again
    "other_method": "OK",  # EndpointB is a handler of its own: it runs once too
    "other_method_redelivered": "OK",  # on_duplicate=Empty answers OK
    "fail_first": "UNAVAILABLE",
    "stored_after_failure": 0,  # the handler's write rolled back with the claim
    "fail_first_retried": "OK",
    "fail_first_again": "ALREADY_EXISTS",
    "racing": ["ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "OK"],
    "runs": {
        "EndpointA:e1": 1,
        "EndpointA:e2": 2,  # once failed (rolled back), once committed
        "EndpointA:e3": 1,  # four concurrent deliveries, one run
        "EndpointB:e1": 1,
    },
    "stored": {"e1": 2, "e2": 1, "e3": 1},
}
