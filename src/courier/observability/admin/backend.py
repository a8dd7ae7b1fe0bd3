"""What the admin server asks of a broker, and the implementation for a running one.

:class:`AdminBackend` is the whole interface between the HTTP layer and the broker: a
snapshot of the consumers, a consumer's DLQ, and a replay. :class:`BrokerBackend` answers it
for a :class:`~courier.broker.runner.Broker` in the same process. Kafka reads and replays run
on the HTTP request threads, never on the broker's threads; at most two run at once (a
2-core machine delivering events comes first), and replays of one consumer run one at a time
(the replay ledger is read, then committed).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from courier.observability.admin.dlq_view import (
    AdminFilter,
    ReplayRequest,
    read_dlq,
    replay_request,
)
from courier.observability.admin.snapshot import broker_snapshot

if TYPE_CHECKING:
    from courier.broker.runner import Broker


class AdminBackend(Protocol):
    """The broker as the admin server sees it."""

    def consumer_names(self) -> Sequence[str]:
        """The consumers this broker runs."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """``{"consumers": [...], "healthy": bool, "generated_at": epoch}``."""
        ...

    def dlq(self, name: str, selection: AdminFilter, limit: int) -> dict[str, Any]:
        """The newest DLQ records of consumer ``name`` that match ``selection``."""
        ...

    def replay(self, name: str, request: ReplayRequest) -> dict[str, Any]:
        """Replay (or dry-run) the records of ``name``'s DLQ that ``request`` selects."""
        ...


class BrokerBackend:
    """:class:`AdminBackend` for a broker running in this process."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._kafka_slots = threading.BoundedSemaphore(2)
        self._replay_locks = {name: threading.Lock() for name in broker.config.consumers}

    def consumer_names(self) -> Sequence[str]:
        return list(self.broker.config.consumers)

    def snapshot(self) -> dict[str, Any]:
        return broker_snapshot(self.broker)

    def dlq(self, name: str, selection: AdminFilter, limit: int) -> dict[str, Any]:
        consumer = self.broker.config.consumers[name]
        with self._kafka_slots:
            return read_dlq(
                consumer, self.broker.bootstrap_servers, selection=selection, limit=limit
            )

    def replay(self, name: str, request: ReplayRequest) -> dict[str, Any]:
        consumer = self.broker.config.consumers[name]
        with self._replay_locks[name], self._kafka_slots:
            return replay_request(consumer, self.broker.bootstrap_servers, request)
