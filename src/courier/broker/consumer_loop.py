"""One Kafka consumer of one consumer service: read, deliver, hand off, commit.

A :class:`ConsumerLoop` is a thread that owns a confluent-kafka ``Consumer`` (synchronous
API, ``enable.auto.commit=false``) and the producer for its retry/DLQ writes. It reads the
service's distribution topics and its retry topic, starts one delivery task per event on the
shared gRPC loop (:mod:`courier.broker.delivery_loop`) and, as results come back, decides
the hand-offs (:mod:`courier.broker.handoff`), and commits per partition the offset below
which everything is done (:class:`~courier.broker.offsets.OffsetTracker`) every
``commit_interval`` seconds, on partition revoke and on stop.

Retry-topic records are held in memory until due (``courier-due-at``) and occupy a window
slot meanwhile; the distribution topics are other partitions and keep flowing. A record due
later at the head of a retry partition delays the ones behind it only once ``batch-size``
records of that partition are held.

Partition revoke: stop fetching those partitions, wait up to ``revoke_grace`` seconds for
their deliveries and hand-offs, commit what is done, forget the rest (the next owner reads it
again: at least once). Stop (SIGTERM): the same for every partition, bounded by
``shutdown_grace``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import ConsumerConfig
from courier.broker.delivery import ConsumerDeliverer, DeliveryOutcome
from courier.broker.delivery_log import log_final_outcomes
from courier.broker.delivery_loop import DeliveryLoop
from courier.broker.handoff import HandOff, plan_handoffs, plan_invalid
from courier.broker.handoff_writer import HandOffWriter, handoff_producer
from courier.broker.method_resolution import PathResolver
from courier.broker.metrics import BrokerMetrics
from courier.broker.partition_control import PartitionControl
from courier.broker.partition_state import PREFETCH_SLACK, PartitionState, TrackedEvent
from courier.broker.record_intake import (
    Undeliverable,
    read_distribution_record,
    read_retry_record,
    source_record,
)
from courier.broker.retry_headers import now_ms
from courier.broker.status_actions import Action
from courier.broker.subscriptions import LoopSettings, Subscription

logger = logging.getLogger("courier.broker")
_kafka_log = logging.getLogger("courier.kafka")


class ConsumerLoop(threading.Thread):
    """The thread that runs one Kafka consumer of one consumer service until stopped."""

    def __init__(
        self,
        consumer: ConsumerConfig,
        subscription: Subscription,
        *,
        resolver: PathResolver,
        bootstrap_servers: str,
        deliverer: ConsumerDeliverer,
        delivery_loop: DeliveryLoop,
        breaker: CircuitBreaker,
        metrics: BrokerMetrics,
        settings: LoopSettings = LoopSettings(),
    ) -> None:
        super().__init__(name=f"courier-consumer-{subscription.label}", daemon=True)
        self.config = consumer
        self.subscription = subscription
        self.error: BaseException | None = None
        self._resolver = resolver
        self._paths: dict[str, tuple[str, ...]] = {}
        self._ordered = frozenset(d.topic for d in consumer.distribution if d.ordering == "key")
        self._servers = bootstrap_servers
        self._deliverer = deliverer
        self._grpc = delivery_loop
        self._breaker = breaker
        self._metrics = metrics
        self._settings = settings
        self._stop_requested = threading.Event()
        self._results: queue.SimpleQueue[tuple[TrackedEvent, list[DeliveryOutcome] | None]] = (
            queue.SimpleQueue()
        )
        self._held: list[tuple[int, int, TrackedEvent]] = []  # (due ms, seq, retry record)
        self._seq = itertools.count()
        self._ready_parts: set[PartitionState] = set()  # partitions with events ready
        self._next_commit = 0.0
        self._closing = False
        self._control: PartitionControl | None = None
        self._writer: HandOffWriter | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to stop fetching, finish within the grace period, commit and exit."""
        self._stop_requested.set()

    @property
    def control(self) -> PartitionControl | None:
        """The assigned partitions (None before the Kafka consumer exists); the loop thread
        owns them: other threads (the admin page) only copy and read."""
        return self._control

    def run(self) -> None:
        try:
            paths = self._resolver.paths(self._stop_requested)
            if paths is None:
                return  # stopped before the consumer's server could be asked
            self._paths = paths
            kafka = Consumer(self._consumer_settings())
            self._control = PartitionControl(
                kafka, self.subscription.label, self.config.name, self._metrics
            )
            self._writer = HandOffWriter(
                handoff_producer(self._servers), self.config.name, self._metrics
            )
            topics = list(self.subscription.topics)
            if self.subscription.read_retry_topic:
                topics.append(self.config.retry_topic)
            kafka.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            logger.info(
                "consumer started",
                extra={"consumer": self.subscription.label,
                       "group": self.subscription.group_id, "topics": topics},
            )  # fmt: skip
            while not self._stop_requested.is_set():
                self._tick()
            self._shutdown()
        except BaseException as exc:
            self.error = exc
            logger.exception("consumer loop failed", extra={"consumer": self.subscription.label})
            self._abandon_everything()

    def _consumer_settings(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._servers,
            "group.id": self.subscription.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # A new group starts at the beginning: events produced before the broker first
            # ran are delivered, not skipped.
            "auto.offset.reset": "earliest",
            # Several broker instances of one consumer move only the partitions that change.
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": self._settings.session_timeout_ms,
            "allow.auto.create.topics": False,
            "fetch.wait.max.ms": 50,
            "queued.min.messages": PREFETCH_SLACK,
            "logger": _kafka_log,
            "on_commit": self._on_commit,
        }

    def _on_commit(self, error: KafkaError | None, offsets: list[TopicPartition]) -> None:
        if self._control is not None:
            self._control.committed(error, offsets)

    def _parts(self) -> tuple[PartitionControl, HandOffWriter]:
        assert self._control is not None and self._writer is not None
        return self._control, self._writer

    # -- the loop ---------------------------------------------------------------------------

    def _tick(self) -> None:
        control, writer = self._parts()
        self._drain_results()
        self._start_due_retries()
        control.apply_pauses(self._breaker.state is BreakerState.OPEN)
        busy = any(p.events for p in control.partitions.values()) or writer.waiting > 0
        free = sum(max(0, 2 * p.window - p.tracker.in_flight) for p in control.partitions.values())
        wanted = max(1, min(free, self._settings.max_poll_records))
        if busy:
            records = control.kafka.consume(num_messages=wanted, timeout=0)
        else:
            # consume() with a timeout waits for a *full* batch: wait for the first record
            # alone, then take what else is already there.
            records = control.kafka.consume(num_messages=1, timeout=self._idle_timeout())
            if records and wanted > 1:
                records += control.kafka.consume(num_messages=wanted - 1, timeout=0)
        for record in records:
            self._accept(record)
        control.seek_back()
        self._start_pending()
        writer.poll(0)
        if not records and busy:
            self._wait_for_result(0.05 if control.all_paused else 0.002)
        if time.monotonic() >= self._next_commit:
            control.commit(asynchronous=True)
            control.update_lag()
            self._next_commit = time.monotonic() + self._settings.commit_interval

    def _idle_timeout(self) -> float:
        timeout = self._settings.idle_poll
        if self._held:
            timeout = min(timeout, max(0.0, (self._held[0][0] - now_ms()) / 1000))
        return timeout

    # -- reading ----------------------------------------------------------------------------

    def _accept(self, record: Message) -> None:
        error = record.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning(
                    "Kafka consumer error",
                    extra={"consumer": self.subscription.label, "error": error.str()},
                )
            return
        control, _ = self._parts()
        source = source_record(record)
        part = control.partitions.get((source.topic, source.partition))
        if part is None or part.revoked:
            return  # fetched just before a revoke: the next owner reads it
        if not control.admit(part, source.offset):
            return
        self._metrics.events_read.labels(self.config.name, source.topic).inc()
        if part.is_retry:
            read = read_retry_record(part, source)
        else:
            methods = self._paths[source.topic]
            read = read_distribution_record(part, source, methods, source.topic in self._ordered)
        if isinstance(read, Undeliverable):
            self._dead_letter(part, read, source)
            return
        event = read
        part.track(event)
        self._metrics.in_flight.labels(self.config.name).inc()
        if not event.methods:
            self._finish(event)
        elif event.state is not None and event.state.due_at_ms > now_ms():
            heapq.heappush(self._held, (event.state.due_at_ms, next(self._seq), event))
        elif part.claim_key(event):
            self._ready(event)

    def _start_due_retries(self) -> None:
        now = now_ms()
        while self._held and self._held[0][0] <= now:
            _, _, event = heapq.heappop(self._held)
            if not event.partition.revoked:
                self._ready(event)

    def _dead_letter(self, part: PartitionState, why: Undeliverable, source: Any) -> None:
        event = TrackedEvent(
            partition=part, source=source, envelope=None, state=why.state, methods=(), request=None
        )
        part.track(event)
        self._metrics.in_flight.labels(self.config.name).inc()
        logger.warning(
            "undeliverable record sent to the DLQ",
            extra={"consumer": self.config.name, "topic": source.topic,
                   "partition": source.partition, "offset": source.offset, "error": why.error},
        )  # fmt: skip
        plan = plan_invalid(self.config, source, why.methods, why.error, now_ms(), why.state)
        self._write(event, [plan])

    # -- delivering -------------------------------------------------------------------------

    def _ready(self, event: TrackedEvent) -> None:
        event.partition.ready.append(event)
        self._ready_parts.add(event.partition)

    def _start_pending(self) -> None:
        events: list[TrackedEvent] = []
        for part in list(self._ready_parts):
            if part.revoked or part.releasing:
                self._ready_parts.discard(part)
                continue
            while part.ready and part.call_slot_free:
                event = part.ready.popleft()
                part.calls += 1
                event.running = True
                events.append(event)
            if not part.ready:
                self._ready_parts.discard(part)
        if not events:
            return
        deliverer, results = self._deliverer, self._results

        def job(event: TrackedEvent) -> tuple[Any, Any]:
            assert event.request is not None
            request = event.request

            def done(task: Any) -> None:
                if task.cancelled():
                    return  # abandoned on revoke or stop: the next reader delivers it
                exc = task.exception()
                if exc is not None:
                    logger.error("delivery task failed", exc_info=exc)
                results.put((event, None if exc else task.result()))

            return (lambda: deliverer.deliver(event.methods, request)), done

        def keep(index: int, task: Any) -> None:
            events[index].task = task

        self._grpc.spawn((job(e) for e in events), on_task=keep)

    def _wait_for_result(self, timeout: float) -> None:
        try:
            item = self._results.get(timeout=timeout)
        except queue.Empty:
            return
        self._on_result(*item)
        self._drain_results()

    def _drain_results(self) -> None:
        while True:
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return
            self._on_result(*item)

    def _on_result(self, event: TrackedEvent, outcomes: list[DeliveryOutcome] | None) -> None:
        event.running = False
        part = event.partition
        part.calls -= 1
        if part.revoked:
            return
        if outcomes is None:  # a bug in the delivery task: try again rather than drop it
            self._ready(event)
            return
        follower = part.release_key(event)
        if follower is not None:
            self._ready(follower)
        assert event.envelope is not None and event.request is not None
        age = max(0.0, time.time() - event.envelope.time.timestamp())
        for outcome in outcomes:
            if outcome.action is Action.COMMIT:
                self._metrics.end_to_end.labels(self.config.name, outcome.method).observe(age)
        plans = plan_handoffs(self.config, event.source, event.state, outcomes, now_ms())
        log_final_outcomes(self.config.name, event.request, event.source, outcomes, plans)
        self._write(event, plans)

    def _write(self, event: TrackedEvent, plans: Sequence[HandOff]) -> None:
        """Hand ``plans`` to Kafka; the event is done when every one is acknowledged."""
        if not plans:
            self._finish(event)
            return
        _, writer = self._parts()
        event.pending_writes += len(plans)

        def acked() -> None:
            event.pending_writes -= 1
            if event.pending_writes == 0 and not event.partition.revoked:
                self._finish(event)

        for plan in plans:
            writer.write(plan, acked)

    def _finish(self, event: TrackedEvent) -> None:
        event.partition.done(event)
        self._metrics.in_flight.labels(self.config.name).dec()

    # -- rebalance and stop -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        control, _ = self._parts()
        for tp in partitions:
            is_retry = (
                tp.topic == self.config.retry_topic and tp.topic not in self.subscription.topics
            )
            control.add(PartitionState(tp.topic, tp.partition, self.config.batch_size,
                                       is_retry=is_retry))  # fmt: skip
        logger.info(
            "partitions assigned",
            extra={"consumer": self.subscription.label, "partitions": _names(partitions)},
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        control, _ = self._parts()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        parts = [control.partitions[k] for k in keys if k in control.partitions]
        self._release(parts, 0.0 if self._closing else self._settings.revoke_grace)
        logger.info(
            "partitions revoked",
            extra={"consumer": self.subscription.label, "partitions": _names(partitions)},
        )

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        control, _ = self._parts()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._forget([control.partitions[k] for k in keys if k in control.partitions])

    def _release(self, parts: list[PartitionState], grace: float) -> None:
        """Wait up to ``grace`` for these partitions' work, commit what is done, forget them."""
        if not parts:
            return
        control, writer = self._parts()
        for part in parts:
            part.releasing = True
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            running = [e for p in parts for e in p.running()]
            if not running:
                break
            if self._breaker.state is not BreakerState.CLOSED and not any(
                e.pending_writes for e in running
            ):
                break  # the calls wait for the breaker: abandon them now
            writer.poll(0)
            self._wait_for_result(0.02)
        writer.poll(0)
        control.commit(parts)
        self._forget(parts)

    def _forget(self, parts: list[PartitionState]) -> None:
        control, _ = self._parts()
        cancel: list[TrackedEvent] = []
        for part in parts:
            cancel.extend(e for e in part.events.values() if e.running)
            self._metrics.in_flight.labels(self.config.name).dec(len(part.events))
            control.forget(part)
            self._ready_parts.discard(part)
        if cancel:
            self._grpc.call_soon(lambda: _cancel_tasks(cancel))

    def _shutdown(self) -> None:
        control, writer = self._parts()
        control.pause_all()
        self._held.clear()  # not due yet: read again after a restart
        self._release(list(control.partitions.values()), self._settings.shutdown_grace)
        writer.flush(5.0)
        self._closing = True
        control.kafka.close()
        logger.info("consumer stopped", extra={"consumer": self.subscription.label})

    def _abandon_everything(self) -> None:
        self._closing = True
        if self._control is None:
            return
        self._forget(list(self._control.partitions.values()))
        with contextlib.suppress(KafkaException, RuntimeError):
            self._control.kafka.close()


def _cancel_tasks(events: Iterable[TrackedEvent]) -> None:
    for event in events:
        if event.task is not None:
            event.task.cancel()


def _names(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
