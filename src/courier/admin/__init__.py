"""The broker's admin web page: consumers, breakers, lag, failures, DLQ browsing and replay.

``courier broker run --config FILE --admin-port PORT`` serves it (see docs/admin.md).
:func:`serve_admin` starts it for a :class:`~courier.broker.runner.Broker` in this process.

Modules: :mod:`~courier.admin.failures` (the broker-side hook: recent failed calls),
:mod:`~courier.admin.snapshot` (consumers, partitions, lag, breaker), :mod:`~courier.admin.dlq_view`
(DLQ records, payload JSON, replays), :mod:`~courier.admin.backend` (the interface the server
uses), :mod:`~courier.admin.server` (HTTP, auth), ``static/`` (the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courier.admin.server import AdminServer
    from courier.broker.runner import Broker


def serve_admin(
    broker: Broker, *, port: int, host: str = "127.0.0.1", token: str | None = None
) -> AdminServer:
    """Start the admin page for ``broker`` on ``host:port``; AdminServerError if it cannot."""
    from courier.admin.backend import BrokerBackend
    from courier.admin.server import AdminServer

    return AdminServer(BrokerBackend(broker), host=host, port=port, token=token).start()
