"""Run the real broker engine in the test process, against real Kafka and gRPC servers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from courier.broker.config import BrokerConfig
from courier.broker.runner import Broker
from courier.broker.subscriptions import LoopSettings

FAST = LoopSettings(commit_interval=0.2, revoke_grace=2.0, shutdown_grace=3.0, idle_poll=0.05)


def free_port() -> int:
    """A loopback port nothing listens on right now (for a subprocess's --*-port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_broker(
    config: BrokerConfig, bootstrap_servers: str, *, only: list[str] | None = None
) -> Iterator[Broker]:
    """A started :class:`Broker`; stopped (and checked to have stopped cleanly) on exit."""
    broker = Broker(config, bootstrap_servers=bootstrap_servers, only=only, settings=FAST)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
    errors = [loop.error for loop in broker.loops if loop.error is not None]
    assert not errors, f"consumer loops failed: {errors}"


def consumer_yaml(
    name: str,
    port: int,
    topics: dict[str, list[str]],
    *,
    max_retry_attempts: int = 3,
    batch_size: int = 10,
    **extra: object,
) -> dict[str, object]:
    """One consumer entry (kebab-case keys) with small delays, for :func:`broker_config`."""
    entry: dict[str, object] = {
        "grpc-server-hostname": "127.0.0.1",
        "grpc-server-port": str(port),
        "max-retry-attempts": max_retry_attempts,
        "batch-size": batch_size,
        "retry-topic": f"{name}_retry",
        "dlq-topic": f"{name}_dlq",
        "call-timeout": "2s",
        "in-memory-retry": {"attempts": 1, "base-backoff": "20ms", "max-backoff": "50ms"},
        "retry-delays": ["200ms", "300ms"],
        "distribution": [{"topic": t, "services": m} for t, m in topics.items()],
    }
    entry.update(extra)
    return entry
