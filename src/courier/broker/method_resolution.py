"""Full gRPC paths for a consumer's methods; bare names found through server reflection.

A distribution may list a bare ``Method`` with no ``grpc-service`` anywhere in the config.
At start-up the broker asks the consumer's server (gRPC server reflection) which of its
services has a method of that name; exactly one must.
"""

from __future__ import annotations

import logging
import threading

from courier.broker.config import ConsumerConfig, MethodRef
from courier.broker.delivery import channel_credentials
from courier.contract.reflection import ReflectionError, ServerMethods, describe_server

logger = logging.getLogger("courier.broker")


class MethodResolutionError(Exception):
    """A bare method name matches no service, or more than one, on the consumer's server."""


def needs_reflection(consumer: ConsumerConfig) -> bool:
    """True if some method of ``consumer`` has no service in the config."""
    return any(m.service is None for d in consumer.distribution for m in d.methods)


def resolve_paths(
    consumer: ConsumerConfig, *, timeout: float = 5.0, described: ServerMethods | None = None
) -> dict[str, tuple[str, ...]]:
    """``{distribution topic: (method path, ...)}`` for ``consumer``.

    Asks the server by reflection only when a method is bare (or uses ``described``).
    Raises :class:`~courier.contract.reflection.ReflectionError` when the server cannot be
    asked (unreachable: worth retrying) and :class:`MethodResolutionError` when it answers
    but a name is unknown or ambiguous (a configuration problem).
    """
    if described is None and needs_reflection(consumer):
        tls = consumer.tls
        described = describe_server(
            consumer.target,
            timeout=timeout,
            credentials=None if tls is None else channel_credentials(tls),
            server_name=None if tls is None else tls.server_name,
        )
    return {
        entry.topic: tuple(_path(consumer, m, described) for m in entry.methods)
        for entry in consumer.distribution
    }


def _path(consumer: ConsumerConfig, method: MethodRef, described: ServerMethods | None) -> str:
    if method.service is not None:
        return method.path
    services = sorted(
        service for service, methods in (described or {}).items() if method.method in methods
    )
    if len(services) == 1:
        return method.with_service(services[0]).path
    where = f"consumer {consumer.name!r} ({consumer.target})"
    if not services:
        offered = ", ".join(sorted(described or {})) or "none"
        raise MethodResolutionError(
            f"{where}: no service on the server has a method {method.method!r} "
            f"(services: {offered}); set grpc-service or write Service/Method"
        )
    raise MethodResolutionError(
        f"{where}: method {method.method!r} is in several services ({', '.join(services)}); "
        "say which with grpc-service or Service/Method"
    )


class PathResolver:
    """Resolves a consumer's paths once, shared by its Kafka consumers; retries while the
    server cannot be reached (the consumer service may start after the broker)."""

    def __init__(
        self, consumer: ConsumerConfig, *, timeout: float = 5.0, retry_every: float = 2.0
    ) -> None:
        self.consumer = consumer
        self._timeout = timeout
        self._retry_every = retry_every
        self._lock = threading.Lock()
        self._paths: dict[str, tuple[str, ...]] | None = None

    def paths(self, stop: threading.Event) -> dict[str, tuple[str, ...]] | None:
        """The paths, or None if ``stop`` was set before the server answered.

        Raises :class:`MethodResolutionError` when the server answers but a name is unknown
        or ambiguous.
        """
        with self._lock:
            while self._paths is None:
                try:
                    self._paths = resolve_paths(self.consumer, timeout=self._timeout)
                except ReflectionError as exc:
                    logger.warning(
                        "cannot resolve bare method names yet; retrying",
                        extra={"consumer": self.consumer.name, "error": str(exc)},
                    )
                    if stop.wait(self._retry_every):
                        return None
            return self._paths
