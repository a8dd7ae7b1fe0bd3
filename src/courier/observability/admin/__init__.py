"""The broker's admin web page: consumers, breakers, lag, failures, DLQ browsing and replay.

``courier broker run --config FILE --admin-port PORT`` serves it (see docs/admin.md).
:func:`serve_admin` starts it for a :class:`~courier.broker.runner.Broker` in this process.

Modules (in ``courier.observability.admin``): ``failures`` (the broker-side hook: recent
failed calls), ``snapshot`` (consumers, partitions, lag, breaker), ``dlq_view`` (DLQ
records, payload JSON, replays), ``backend`` (the interface the server uses), ``server``
(HTTP, auth), ``static/`` (the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courier.broker.runner import Broker
    from courier.observability.admin.server import AdminServer


def serve_admin(
    broker: Broker, *, port: int, host: str = "127.0.0.1", token: str | None = None
) -> AdminServer:
    """Start the admin page for ``broker`` on ``host:port``; AdminServerError if it cannot."""
    from courier.observability.admin.backend import BrokerBackend
    from courier.observability.admin.server import AdminServer

    return AdminServer(BrokerBackend(broker), host=host, port=port, token=token).start()
