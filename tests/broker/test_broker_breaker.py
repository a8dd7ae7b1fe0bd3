"""A consumer that answers UNAVAILABLE for a while: the breaker opens, calls drop to probes,
nothing reaches the DLQ (or even the retry topic), and every event is delivered after.

The issue's scenario is a 30 s outage; the mechanism does not depend on its length, so the
test makes the point with a 4 s outage, a 1 s open period and a probe every 0.5 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc
import pytest

from .broker_harness import consumer_yaml, running_broker
from .kafka_helpers import broker_config, create_topics, make_event, produce, read_topic
from .recording_server import Call, RecordingServer

pytestmark = pytest.mark.integration

SVC = "test.v1.Events"
OUTAGE = 4.0
PROBE_INTERVAL = 0.5


def test_outage_opens_the_breaker_pauses_and_loses_nothing(
    bootstrap_servers: str, unique: Callable[[str], str]
) -> None:
    topic, name = unique("pings"), unique("svc")
    down = threading.Event()
    down.set()

    def outage(call: Call) -> grpc.StatusCode | None:
        return grpc.StatusCode.UNAVAILABLE if down.is_set() else None

    with RecordingServer({SVC: ["Handle"]}) as server:
        server.behaviour = outage
        config = broker_config(
            {
                name: consumer_yaml(
                    name, server.port, {topic: [f"{SVC}/Handle"]},
                    batch_size=5, max_retry_attempts=1,
                    **{
                        "in-memory-retry": {"attempts": 2, "base-backoff": "50ms",
                                            "max-backoff": "100ms"},
                        "circuit-breaker": {"failure-threshold": 3, "open-seconds": "1s",
                                            "probe-interval": f"{PROBE_INTERVAL}s"},
                    },
                )
            }
        )  # fmt: skip
        create_topics(bootstrap_servers, config)
        events = produce(bootstrap_servers, [make_event(topic) for _ in range(60)])
        consumer = config.consumers[name]
        with running_broker(config, bootstrap_servers) as broker:
            started = time.monotonic()
            breaker = broker.breakers[name]
            server.wait_for(lambda: breaker.state.name == "OPEN", 5, "the breaker to open")
            time.sleep(OUTAGE)
            during = server.snapshot()
            down.clear()
            server.wait_for(lambda: len(server.delivered("Handle")) == 60, 30, "all events")
            recovered = time.monotonic()
            gauge = broker.metrics.registry.get_sample_value(
                "courier_broker_breaker_state", {"consumer": name}
            )
        assert set(server.delivered("Handle")) == {e.id for e in events}
        # One window (2 partitions x batch-size 5) of first calls opens the breaker; the
        # events wait (their in-memory retries unspent), the partitions are paused, and only
        # probes go out, one per probe interval.
        settled = [c for c in during if c.at > started + 1.5]
        budget = (OUTAGE + started - (started + 1.5)) / PROBE_INTERVAL + 2
        assert len(settled) <= budget, f"{len(settled)} calls while open (budget {budget:.0f})"
        assert len(during) <= 10 + OUTAGE / PROBE_INTERVAL + 2
        assert read_topic(bootstrap_servers, consumer.dlq_topic, 2) == []
        assert read_topic(bootstrap_servers, consumer.retry_topic, 2) == []
        assert gauge == 0.0  # closed again
        print(f"\ncalls during the {OUTAGE:g}s outage: {len(during)} "
              f"({len(settled)} after the first 1.5s); recovered in "
              f"{recovered - started - OUTAGE:.2f}s")  # fmt: skip
