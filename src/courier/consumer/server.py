"""The consumer service's gRPC server: the team's servicers plus what every consumer needs.

::

    from courier.consumer import serve
    from packages.v1.events_pb2_grpc import EventsAPIServicer

    class EventsAPI(EventsAPIServicer):
        def PackageDelivered(self, request, context):
            ...
            return Empty()

    if __name__ == "__main__":
        serve(EventsAPI(), port=50051, metrics_port=9101)

On top of the servicers, the server has: the exception-to-status interceptor
(:mod:`courier.consumer.errors`), gRPC health checking (SERVING, NOT_SERVING on shutdown),
reflection (``courier contract check`` and ``grpcurl`` use it), optional TLS, Prometheus
``/metrics`` and ``/healthz``, JSON logs when stdout is not a terminal, and a graceful stop on
SIGTERM/SIGINT: health goes NOT_SERVING, new calls are refused, calls in flight get ``grace``
seconds. For asyncio servicers see :mod:`courier.consumer.aio`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from courier._signals import install_stop_handlers
from courier.consumer.interceptors import ErrorMappingInterceptor, Observer
from courier.consumer.logs import log_call
from courier.consumer.metrics import record_call
from courier.observability.logging import LogFormat, configure_logging
from courier.observability.metrics_server import DEFAULT_METRICS_HOST, MetricsServer
from courier.observability.tracing import configure_tracing
from courier.settings import service_name

logger = logging.getLogger("courier.consumer")

DEFAULT_OBSERVERS: tuple[Observer, ...] = (record_call, log_call)

# grpc turns SO_REUSEPORT on by default: a second server (a stale instance) would silently
# bind the same port and take half the calls. A taken port should be an error instead.
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.so_reuseport", 0),)


@dataclass(frozen=True)
class TlsConfig:
    """Server certificate and key (PEM files); with ``client_ca_file``, clients must present a
    certificate signed by that CA (mutual TLS)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        """The grpc credentials these files describe."""
        ca = Path(self.client_ca_file).read_bytes() if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(Path(self.key_file).read_bytes(), Path(self.cert_file).read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


@dataclass(frozen=True)
class ServicerRegistration:
    """A servicer and the generated function that mounts it (``add_XServicer_to_server``)."""

    servicer: object
    add_to_server: Callable[[Any, Any], None]


ServicerLike = object  # a generated-servicer subclass instance, a (servicer, add_fn) pair, or above


def registration_for(servicer: ServicerLike) -> ServicerRegistration:
    """Find how to mount ``servicer``: the ``add_<Base>_to_server`` next to its generated base.

    Pass ``(servicer, add_XServicer_to_server)`` for servicers that do not derive from a
    generated ``*Servicer`` class.
    """
    if isinstance(servicer, ServicerRegistration):
        return servicer
    if isinstance(servicer, tuple) and len(servicer) == 2 and callable(servicer[1]):
        return ServicerRegistration(servicer[0], servicer[1])
    for cls in type(servicer).__mro__:
        module = sys.modules.get(cls.__module__)
        add = getattr(module, f"add_{cls.__name__}_to_server", None)
        if callable(add):
            return ServicerRegistration(servicer, add)
    raise TypeError(
        f"{type(servicer).__name__} does not derive from a generated *Servicer class; "
        "pass (servicer, add_XServicer_to_server) instead"
    )


@dataclass
class _MountedServices:
    """What the generated ``add_*_to_server`` functions registered: service -> method names."""

    methods: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def mount(self, server: Any, registrations: Iterable[ServicerRegistration]) -> None:
        recorder = _RecordingServer(server, self)
        for registration in registrations:
            _import_service_descriptors(registration.add_to_server)
            registration.add_to_server(registration.servicer, recorder)


def _import_service_descriptors(add_to_server: Callable[..., Any]) -> None:
    # `x_pb2_grpc` imports the request/response modules but not `x_pb2`, which holds the
    # service descriptor; reflection (and `courier contract check`) needs it in the pool.
    module = getattr(add_to_server, "__module__", None) or ""
    if module.endswith("_pb2_grpc"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module.removesuffix("_grpc"))


class _RecordingServer:
    """Stands in for the server while generated code mounts a servicer, noting service names."""

    def __init__(self, server: Any, mounted: _MountedServices) -> None:
        self._server = server
        self._mounted = mounted

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        for handler in handlers:
            name = getattr(handler, "service_name", lambda: None)()
            if name:
                self._mounted.methods.setdefault(name, ())
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._mounted.methods[service] = tuple(handlers)
        self._server.add_registered_method_handlers(service, handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class ConsumerServer:
    """A sync gRPC server carrying the team's servicers, health, reflection and the error mapping.

    Build it with :func:`build_server`; :func:`serve` runs one until SIGTERM.
    """

    def __init__(
        self,
        server: grpc.Server,
        port: int,
        host: str,
        methods: dict[str, tuple[str, ...]],
        health_servicer: health.HealthServicer,
    ) -> None:
        self.server = server
        self.port = port
        self.host = host
        self.methods = methods
        self.health = health_servicer
        self._stopping = threading.Event()

    @property
    def address(self) -> str:
        """``host:port`` to dial."""
        return f"{self.host}:{self.port}"

    @property
    def serving(self) -> bool:
        """False once :meth:`stop` began."""
        return not self._stopping.is_set()

    def start(self) -> ConsumerServer:
        """Start accepting calls; returns self."""
        self.server.start()
        return self

    def stop(self, grace: float | None = 10.0) -> None:
        """Report NOT_SERVING, refuse new calls and give calls in flight ``grace`` seconds."""
        self._stopping.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()

    def __enter__(self) -> ConsumerServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop(grace=1.0)


def build_server(
    *servicers: ServicerLike,
    port: int = 0,
    host: str = "127.0.0.1",
    tls: TlsConfig | None = None,
    max_workers: int = 16,
    observers: Sequence[Observer] = DEFAULT_OBSERVERS,
    options: Sequence[tuple[str, Any]] = (),
) -> ConsumerServer:
    """Build (not start) a :class:`ConsumerServer`; ``port=0`` picks a free port."""
    registrations = [registration_for(s) for s in servicers]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="courier-handler"),
        interceptors=[ErrorMappingInterceptor(observers)],
        options=[*SERVER_OPTIONS, *options],
    )
    mounted = _MountedServices()
    mounted.mount(server, registrations)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in mounted.methods:
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*mounted.methods, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    bound = _bind(server, host, port, tls)
    return ConsumerServer(server, bound, host, mounted.methods, health_servicer)


def _bind(server: Any, host: str, port: int, tls: TlsConfig | None) -> int:
    address = f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, tls.server_credentials())
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if not bound:
        raise OSError(f"cannot listen on {address} (port taken?)")
    return int(bound)


def serve(
    *servicers: ServicerLike,
    port: int,
    host: str = "127.0.0.1",
    tls: TlsConfig | None = None,
    metrics_port: int | None = None,
    max_workers: int = 16,
    grace: float = 10.0,
    stop_event: threading.Event | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
    log_format: LogFormat | str | None = None,
) -> None:
    """Run a consumer server until SIGTERM/SIGINT (or ``stop_event``), then stop gracefully.

    Blocks. Signal handlers are installed only when called from the main thread; elsewhere
    pass ``stop_event`` and set it to stop. ``/metrics`` listens on ``metrics_host`` (loopback
    unless told otherwise, whatever ``host`` the gRPC server binds); ``log_format`` is
    ``json`` or ``text`` (default: ``$COURIER_LOG_FORMAT``, else JSON unless stdout is a tty),
    and an app that configured logging itself keeps its own setup.
    """
    configure_logging(log_format=log_format, logger_name="", keep_existing=True)
    configure_tracing(service_name())  # only when OTEL_* variables ask for an exporter
    consumer = build_server(*servicers, port=port, host=host, tls=tls, max_workers=max_workers)
    stop = stop_event or threading.Event()
    metrics = None
    if metrics_port is not None:
        metrics = MetricsServer(
            healthy=lambda: consumer.serving, host=metrics_host, port=metrics_port
        ).start()
    restore = install_stop_handlers(stop.set)
    consumer.start()
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
        stop.wait()
    finally:
        logger.info("stopping: in-flight calls get %.1fs", grace)
        consumer.stop(grace)
        if metrics is not None:
            metrics.stop()
        restore()
        logger.info("consumer stopped")
