"""The consumer server for asyncio servicers (``async def`` handlers), on ``grpc.aio``.

::

    import asyncio
    from courier.consumer.aio import serve

    asyncio.run(serve(EventsAPI(), port=50051, metrics_port=9101))

Same features as :func:`courier.consumer.serve`; sync handlers mounted here run in worker
threads and are mapped the same way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from courier.consumer.interceptors import AsyncErrorMappingInterceptor, Observer
from courier.consumer.server import (
    DEFAULT_OBSERVERS,
    SERVER_OPTIONS,
    ServicerLike,
    TlsConfig,
    _bind,
    _MountedServices,
    registration_for,
)
from courier.observability.logging import LogFormat, configure_logging
from courier.observability.metrics_server import DEFAULT_METRICS_HOST, MetricsServer
from courier.observability.tracing import configure_tracing
from courier.settings import service_name

logger = logging.getLogger("courier.consumer")

# grpc_health ships its asyncio servicer as `health.aio`; the type stubs do not know it.
_health_aio: Any = health.aio  # type: ignore[attr-defined]


class AsyncConsumerServer:
    """A ``grpc.aio`` server with the team's servicers, health, reflection and the error mapping."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        host: str,
        methods: dict[str, tuple[str, ...]],
        health_servicer: Any,
    ) -> None:
        self.server = server
        self.port = port
        self.host = host
        self.methods = methods
        self.health = health_servicer
        self.serving = True

    @property
    def address(self) -> str:
        """``host:port`` to dial."""
        return f"{self.host}:{self.port}"

    async def start(self) -> AsyncConsumerServer:
        """Start accepting calls and report SERVING; returns self."""
        for service in self.methods:
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        return self

    async def stop(self, grace: float | None = 10.0) -> None:
        """Report NOT_SERVING, refuse new calls and give calls in flight ``grace`` seconds."""
        self.serving = False
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def build_server(
    *servicers: ServicerLike,
    port: int = 0,
    host: str = "127.0.0.1",
    tls: TlsConfig | None = None,
    observers: Sequence[Observer] = DEFAULT_OBSERVERS,
    options: Sequence[tuple[str, Any]] = (),
) -> AsyncConsumerServer:
    """Build (not start) an :class:`AsyncConsumerServer`; call it inside the running loop."""
    registrations = [registration_for(s) for s in servicers]
    server = grpc.aio.server(
        interceptors=[AsyncErrorMappingInterceptor(observers)], options=[*SERVER_OPTIONS, *options]
    )
    mounted = _MountedServices()
    mounted.mount(server, registrations)
    health_servicer = _health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*mounted.methods, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    bound = _bind(server, host, port, tls)
    return AsyncConsumerServer(server, bound, host, mounted.methods, health_servicer)


async def serve(
    *servicers: ServicerLike,
    port: int,
    host: str = "127.0.0.1",
    tls: TlsConfig | None = None,
    metrics_port: int | None = None,
    grace: float = 10.0,
    stop_event: asyncio.Event | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
    log_format: LogFormat | str | None = None,
) -> None:
    """Run an asyncio consumer server until SIGTERM/SIGINT (or ``stop_event``), then stop.

    ``metrics_host`` and ``log_format`` as in :func:`courier.consumer.server.serve`.
    """
    configure_logging(log_format=log_format, logger_name="", keep_existing=True)
    configure_tracing(service_name())  # only when OTEL_* variables ask for an exporter
    consumer = build_server(*servicers, port=port, host=host, tls=tls)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    metrics = None
    if metrics_port is not None:
        metrics = MetricsServer(
            healthy=lambda: consumer.serving, host=metrics_host, port=metrics_port
        ).start()
    await consumer.start()
    logger.info(
        "consumer serving %s on %s",
        ", ".join(consumer.methods) or "no services",
        consumer.address,
        extra={
            "address": consumer.address,
            "services": list(consumer.methods),
            "metrics_port": metrics.port if metrics else None,
        },
    )
    try:
        await stop.wait()
    finally:
        logger.info("stopping: in-flight calls get %.1fs", grace)
        await consumer.stop(grace)
        if metrics is not None:
            metrics.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
        logger.info("consumer stopped")
