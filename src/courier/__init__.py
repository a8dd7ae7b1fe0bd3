"""Courier: save a protobuf event in your transaction; Courier delivers it over Kafka to gRPC.

Layout: each subpackage owns one stage of an event's path (see DESIGN.md):
``events`` (the envelope and its Kafka headers), ``outbox`` (the table, Django and
SQLAlchemy), ``relay`` (outbox -> Kafka), ``broker`` (Kafka -> gRPC), ``consumer``
(the gRPC server kit), ``lake`` (Kafka -> Parquet), ``devstack`` (local Postgres and
Kafka). This file pulls together the public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["EventEnvelope", "__version__", "build_event"]

if TYPE_CHECKING:
    from courier.events import EventEnvelope
    from courier.outbox.builder import build_event


def __getattr__(name: str) -> Any:
    # Lazy: `import courier` must not pull Django or SQLAlchemy into a process that uses neither.
    if name == "build_event":
        from courier.outbox.builder import build_event

        return build_event
    if name == "EventEnvelope":
        from courier.events import EventEnvelope

        return EventEnvelope
    raise AttributeError(f"module 'courier' has no attribute {name!r}")
