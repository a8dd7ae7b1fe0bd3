"""A running broker with an admin page, two real gRPC consumers and real Kafka topics.

- ``down``: its server answers UNAVAILABLE, so its breaker opens (and stays open: 60 s);
- ``picky``: its server answers INVALID_ARGUMENT while ``picky_rejects`` is set, so its
  events go straight to its DLQ; clear the flag and replayed events are accepted.

Payloads are real ``packages.v1.PackageDelivered`` messages whose ``received_by`` and an
extra header carry markup, to check that the page shows it as text.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
from broker.broker_harness import consumer_yaml, running_broker
from broker.kafka_helpers import broker_config, create_topics, make_event, produce
from broker.recording_server import Call, RecordingServer
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Package

from courier.broker.runner import Broker
from courier.events import EventEnvelope
from courier.observability.admin import serve_admin
from courier.observability.admin.server import AdminServer

SVC = "test.v1.Events"
TOKEN = "admin-test-token"
MARKUP = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


@dataclass
class AdminScenario:
    broker: Broker
    admin: AdminServer
    down_name: str
    picky_name: str
    down_server: RecordingServer
    picky_server: RecordingServer
    down_events: list[EventEnvelope]
    picky_events: list[EventEnvelope]
    picky_rejects: threading.Event

    @property
    def url(self) -> str:
        return self.admin.url


def json_request(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """GET ``url`` (POST ``body`` as JSON if given), with a bearer ``token`` if given; the
    status and the decoded JSON answer, errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def delivered_payload(n: int) -> bytes:
    message = PackageDelivered(package=Package(id=f"pkg-{n}"), received_by=MARKUP)
    return message.SerializeToString()


@contextlib.contextmanager
def admin_scenario(
    bootstrap_servers: str, unique: Callable[[str], str], events: int = 3
) -> Iterator[AdminScenario]:
    """Start the servers, create the topics, produce, run the broker and its admin page."""
    down_name, picky_name = unique("down"), unique("picky")
    down_topic, picky_topic = unique("admin_down"), unique("admin_picky")
    rejects = threading.Event()
    rejects.set()

    def unavailable(_call: Call) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def picky(_call: Call) -> tuple[grpc.StatusCode, str] | None:
        if rejects.is_set():
            return grpc.StatusCode.INVALID_ARGUMENT, "received_by <b>must</b> be a name"
        return None

    breaker = {"failure-threshold": 2, "open-seconds": "60s", "probe-interval": "1s"}
    with (
        RecordingServer({SVC: ["Handle"]}) as down_server,
        RecordingServer({SVC: ["Handle"]}) as picky_server,
    ):
        down_server.behaviour = unavailable
        picky_server.behaviour = picky
        config = broker_config(
            {
                down_name: consumer_yaml(down_name, down_server.port,
                                         {down_topic: [f"{SVC}/Handle"]},
                                         **{"circuit-breaker": breaker}),
                picky_name: consumer_yaml(picky_name, picky_server.port,
                                          {picky_topic: [f"{SVC}/Handle"]}, max_retry_attempts=1),
            }
        )  # fmt: skip
        create_topics(bootstrap_servers, config)

        def batch(topic: str) -> list[EventEnvelope]:
            made = []
            for n in range(events):
                event = make_event(topic, key=f"pkg-{n}", payload=delivered_payload(n))
                made.append(replace(event, headers={**event.headers, "x-note": MARKUP}))
            return produce(bootstrap_servers, made)

        down_events, picky_events = batch(down_topic), batch(picky_topic)
        with running_broker(config, bootstrap_servers) as broker:
            admin = serve_admin(broker, port=0, token=TOKEN)
            try:
                yield AdminScenario(
                    broker=broker,
                    admin=admin,
                    down_name=down_name,
                    picky_name=picky_name,
                    down_server=down_server,
                    picky_server=picky_server,
                    down_events=down_events,
                    picky_events=picky_events,
                    picky_rejects=rejects,
                )
            finally:
                admin.stop()
