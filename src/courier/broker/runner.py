"""``courier broker run``: the delivery engine, assembled and run until SIGTERM.

One :class:`~courier.broker.delivery_loop.DeliveryLoop` (asyncio, all gRPC calls), one
:class:`~courier.broker.breaker.CircuitBreaker` and one
:class:`~courier.broker.delivery.ConsumerDeliverer` (gRPC channel) per consumer service, and
one :class:`~courier.broker.consumer_loop.ConsumerLoop` thread per Kafka consumer: the
service's own, plus one per ``dedicated`` distribution. ``--only`` keeps just the named
services (sidecar mode); broker processes running the same service share its partitions
through the consumer group.

Exit codes: 0 after a clean stop, 1 when Kafka fails (unreachable at start, a fatal write
error), 2 when the config does not match the consumer's server (a bare method name that no
service, or several, have).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException

from courier._signals import install_stop_handlers
from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import BrokerConfig, ConsumerConfig
from courier.broker.consumer_loop import ConsumerLoop
from courier.broker.delivery import ConsumerDeliverer
from courier.broker.delivery_loop import DeliveryLoop
from courier.broker.kafka_clients import admin_client, unreachable_message
from courier.broker.method_resolution import MethodResolutionError, PathResolver
from courier.broker.metrics import BrokerMetrics
from courier.broker.subscriptions import LoopSettings, subscriptions
from courier.observability.admin.failures import FailureLog, ObservedDeliverer
from courier.observability.logging import LogFormat, configure_logging
from courier.observability.metrics_server import (
    DEFAULT_METRICS_HOST,
    MetricsServer,
    MetricsServerError,
)

if TYPE_CHECKING:
    from courier.observability.admin.server import AdminServer

logger = logging.getLogger("courier.broker")


class BrokerStartError(Exception):
    """The broker cannot start; ``exit_code`` says why (1 Kafka, 2 configuration)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Broker:
    """The engine for the consumers of ``config``; :meth:`start`, then :meth:`wait`.

    Usable in-process (tests, the demo): :meth:`request_stop` from any thread.
    """

    def __init__(
        self,
        config: BrokerConfig,
        *,
        bootstrap_servers: str,
        only: Iterable[str] | None = None,
        metrics: BrokerMetrics | None = None,
        settings: LoopSettings = LoopSettings(),
    ) -> None:
        self.config = config.select(only) if only else config
        self.bootstrap_servers = bootstrap_servers
        self.metrics = metrics or BrokerMetrics()
        self.settings = settings
        self.breakers: dict[str, CircuitBreaker] = {}
        self.failures = FailureLog()  # recent failed calls, for the admin page
        self.loops: list[ConsumerLoop] = []
        self._grpc = DeliveryLoop()
        self._deliverers: list[ConsumerDeliverer] = []
        self._stop = threading.Event()
        self._started = False
        self._closed = False

    def start(self) -> Broker:
        """Check Kafka and the topics, open the channels, start every consumer thread."""
        self._check_topics()
        self._grpc.start()
        self._started = True
        for consumer in self.config.consumers.values():
            breaker = self._breaker(consumer)
            deliverer = ObservedDeliverer(consumer, breaker, self.metrics, failures=self.failures)
            self._grpc.run(deliverer.open(), timeout=10)
            self._deliverers.append(deliverer)
            resolver = PathResolver(consumer)
            for subscription in subscriptions(consumer):
                loop = ConsumerLoop(
                    consumer,
                    subscription,
                    resolver=resolver,
                    bootstrap_servers=self.bootstrap_servers,
                    deliverer=deliverer,
                    delivery_loop=self._grpc,
                    breaker=breaker,
                    metrics=self.metrics,
                    settings=self.settings,
                )
                self.loops.append(loop)
        for loop in self.loops:
            loop.start()
        return self

    def request_stop(self) -> None:
        """Stop fetching; each consumer finishes within its grace period, commits, exits."""
        self._stop.set()
        for loop in self.loops:
            loop.request_stop()

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until every consumer thread has ended; the exit code (None on timeout).

        When one consumer fails, the others are stopped too: a broker that runs is whole.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(loop.is_alive() for loop in self.loops):
            if any(loop.error is not None for loop in self.loops):
                self.request_stop()
            if deadline is not None and time.monotonic() >= deadline:
                return None
            for loop in self.loops:
                loop.join(0.1)
        return self.exit_code()

    def exit_code(self) -> int:
        """0 if every consumer stopped cleanly, 2 for a config mismatch, 1 otherwise."""
        errors = [loop.error for loop in self.loops if loop.error is not None]
        if not errors:
            return 0
        return 2 if all(isinstance(e, MethodResolutionError) for e in errors) else 1

    def close(self) -> None:
        """Stop everything (if still running) and close the gRPC channels; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.request_stop()
        self.wait(self.settings.shutdown_grace + 15)
        if self._started:
            for deliverer in self._deliverers:
                try:
                    self._grpc.run(deliverer.close(), timeout=5)
                except Exception:  # closing is best effort
                    logger.debug("closing a channel failed", exc_info=True)
        self._grpc.stop()

    def healthy(self) -> bool:
        """Every consumer thread is running and none has failed."""
        return (
            self._started
            and not self._stop.is_set()
            and all(loop.is_alive() and loop.error is None for loop in self.loops)
        )

    def _breaker(self, consumer: ConsumerConfig) -> CircuitBreaker:
        gauge = self.metrics.breaker_state.labels(consumer.name)
        gauge.set(BreakerState.CLOSED.value)

        def changed(before: BreakerState, after: BreakerState) -> None:
            gauge.set(after.value)
            log = logger.warning if after is BreakerState.OPEN else logger.info
            log(
                "circuit breaker " + after.name.lower().replace("_", "-"),
                extra={"consumer": consumer.name, "from": before.name.lower()},
            )

        breaker = CircuitBreaker(consumer.breaker, on_change=changed)
        self.breakers[consumer.name] = breaker
        return breaker

    def _check_topics(self, timeout: float = 10.0) -> None:
        admin = admin_client(self.bootstrap_servers)
        try:
            existing = set(admin.list_topics(timeout=timeout).topics)
        except KafkaException as exc:
            raise BrokerStartError(unreachable_message(exc, timeout)) from None
        needed: list[str] = []
        for consumer in self.config.consumers.values():
            needed += [*consumer.topics, consumer.retry_topic, consumer.dlq_topic]
        missing = [t for t in dict.fromkeys(needed) if t not in existing]
        if missing:
            raise BrokerStartError(
                f"missing Kafka topics: {', '.join(missing)} "
                "(create them: courier topics ensure --config ...)"
            )


def run_broker(
    config: BrokerConfig,
    *,
    only: list[str] | None = None,
    bootstrap_servers: str,
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
    settings: LoopSettings = LoopSettings(),
    log_format: LogFormat | str | None = None,
    admin_port: int | None = None,
    admin_host: str = "127.0.0.1",
    admin_token: str | None = None,
) -> int:
    """Run the broker until SIGTERM/SIGINT; the process exit code.

    ``admin_port``: also serve the admin page (:mod:`courier.observability.admin`) on
    ``admin_host``.

    Logs go to stdout (JSON lines when it is not a terminal); a start-up failure is one
    line on stderr.
    """
    restore_logging = configure_logging(log_format=log_format)
    broker = Broker(config, bootstrap_servers=bootstrap_servers, only=only, settings=settings)
    restore_signals = install_stop_handlers(broker.request_stop, logger)
    server: MetricsServer | None = None
    admin: AdminServer | None = None
    try:
        if metrics_port is not None:
            try:
                server = MetricsServer(
                    broker.metrics.registry, broker.healthy, metrics_host, metrics_port
                ).start()
            except MetricsServerError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        if admin_port is not None:
            from courier.observability.admin import serve_admin
            from courier.observability.admin.server import AdminServerError

            try:
                admin = serve_admin(broker, port=admin_port, host=admin_host, token=admin_token)
            except AdminServerError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        try:
            broker.start()
        except BrokerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        logger.info(
            "broker running",
            extra={"consumers": list(broker.config.consumers), "kafka": bootstrap_servers},
        )
        code = broker.wait()
        for loop in broker.loops:
            if isinstance(loop.error, MethodResolutionError):
                print(f"error: {loop.error}", file=sys.stderr)
        broker.close()
        logger.info("broker stopped", extra={"exit_code": code})
        return code or 0
    finally:
        broker.close()  # a no-op after a clean stop; else it closes what start() opened
        if admin is not None:
            admin.stop()
        if server is not None:
            server.stop()
        restore_signals()
        restore_logging()
