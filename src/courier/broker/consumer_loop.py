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
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from courier.broker.breaker import BreakerState, CircuitBreaker
from courier.broker.config import ConsumerConfig
from courier.broker.delivery import (
    ConsumerDeliverer,
    DeliveryOutcome,
    delivery_request,
)
from courier.broker.delivery_loop import DeliveryLoop
from courier.broker.handoff import SourceRecord, plan_handoffs, plan_invalid
from courier.broker.handoff_writer import HandOffWriter, handoff_producer
from courier.broker.method_resolution import PathResolver
from courier.broker.metrics import BrokerMetrics
from courier.broker.partition_state import PartitionState, TrackedEvent
from courier.broker.retry_headers import InvalidRetryHeaders, RetryState, now_ms
from courier.broker.status_actions import Action
from courier.events import EventEnvelope, InvalidEventHeaders

logger = logging.getLogger("courier.broker")
_kafka_log = logging.getLogger("courier.kafka")


@dataclass(frozen=True)
class LoopSettings:
    """Engine timings that are not part of the broker config."""

    commit_interval: float = 1.0
    revoke_grace: float = 5.0
    shutdown_grace: float = 10.0
    idle_poll: float = 0.1
    max_poll_records: int = 500
    session_timeout_ms: int = 10_000


@dataclass(frozen=True)
class Subscription:
    """What one Kafka consumer reads: its group, distribution topics and retry topic (or not).

    A distribution with ``dedicated: true`` gets a Kafka consumer of its own in a group of
    its own, ``<group>.<topic>``: were it in the service's group, every rebalance of one
    would stop the other, and the group's members would have different subscriptions.
    """

    label: str
    group_id: str
    topics: tuple[str, ...]
    read_retry_topic: bool


def subscriptions(consumer: ConsumerConfig) -> list[Subscription]:
    """The Kafka consumers of one consumer service: the main one (its shared distribution
    topics and its retry topic), then one per dedicated distribution."""
    shared = tuple(d.topic for d in consumer.distribution if not d.dedicated)
    found = [Subscription(consumer.name, consumer.group_id, shared, read_retry_topic=True)]
    for entry in consumer.distribution:
        if entry.dedicated:
            found.append(
                Subscription(
                    f"{consumer.name}/{entry.topic}",
                    f"{consumer.group_id}.{entry.topic}",
                    (entry.topic,),
                    read_retry_topic=False,
                )
            )
    return found


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
        self._partitions: dict[tuple[str, int], PartitionState] = {}
        self._paused: set[tuple[str, int]] = set()
        self._held: list[tuple[int, int, TrackedEvent]] = []
        self._seq = itertools.count()
        self._to_start: list[TrackedEvent] = []
        self._rewind: list[TopicPartition] = []
        self._next_commit = 0.0
        self._closing = False
        self._lag_labels: set[tuple[str, str, str]] = set()
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._kafka: Consumer | None = None
        self._writer: HandOffWriter | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to stop fetching, finish within the grace period, commit and exit."""
        self._stop_requested.set()

    def run(self) -> None:
        try:
            paths = self._resolver.paths(self._stop_requested)
            if paths is None:
                return  # stopped before the consumer's server could be asked
            self._paths = paths
            self._kafka = Consumer(self._consumer_settings())
            self._writer = HandOffWriter(
                handoff_producer(self._servers), self.config.name, self._metrics
            )
            topics = list(self.subscription.topics)
            if self.subscription.read_retry_topic:
                topics.append(self.config.retry_topic)
            self._kafka.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            self.ready.set()
            logger.info(
                "consumer started",
                extra={
                    "consumer": self.subscription.label,
                    "group": self.subscription.group_id,
                    "topics": topics,
                },
            )
            while not self._stop_requested.is_set():
                self._tick()
            self._shutdown()
        except BaseException as exc:
            self.error = exc
            logger.exception("consumer loop failed", extra={"consumer": self.subscription.label})
            self._abandon_everything()
        finally:
            self.ready.set()

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
            "fetch.wait.max.ms": 100,
            "logger": _kafka_log,
        }

    # -- the loop ---------------------------------------------------------------------------

    def _tick(self) -> None:
        kafka, writer = self._kafka_and_writer()
        self._drain_results()
        self._start_due_retries()
        self._apply_pauses()
        busy = self._busy()
        free = sum(max(0, p.window - p.tracker.in_flight) for p in self._partitions.values())
        wanted = max(1, min(free, self._settings.max_poll_records))
        if busy:
            records = kafka.consume(num_messages=wanted, timeout=0)
        else:
            # consume() with a timeout waits for a *full* batch: wait for the first record
            # alone, then take what else is already there.
            records = kafka.consume(num_messages=1, timeout=self._idle_timeout())
            if records and wanted > 1:
                records += kafka.consume(num_messages=wanted - 1, timeout=0)
        for record in records:
            self._accept(record)
        if self._rewind:
            self._pause_and_seek()
        self._start_pending()
        writer.poll(0)
        if not records and busy:
            all_paused = len(self._paused) >= len(self._partitions)
            self._wait_for_result(0.05 if all_paused else 0.002)
        if time.monotonic() >= self._next_commit:
            self._commit(self._partitions.values())
            self._update_lag()
            self._next_commit = time.monotonic() + self._settings.commit_interval

    def _pause_and_seek(self) -> None:
        kafka, _ = self._kafka_and_writer()
        rewind, self._rewind = self._rewind, []
        kafka.pause([TopicPartition(tp.topic, tp.partition) for tp in rewind])
        self._paused.update((tp.topic, tp.partition) for tp in rewind)
        for tp in rewind:
            kafka.seek(tp)

    def _busy(self) -> bool:
        return any(p.events for p in self._partitions.values()) or bool(
            self._writer and self._writer.waiting
        )

    def _idle_timeout(self) -> float:
        timeout = self._settings.idle_poll
        if self._held:
            timeout = min(timeout, max(0.0, (self._held[0][0] - now_ms()) / 1000))
        return timeout

    def _kafka_and_writer(self) -> tuple[Consumer, HandOffWriter]:
        assert self._kafka is not None and self._writer is not None
        return self._kafka, self._writer

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
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        part = self._partitions.get((topic, partition))
        if part is None or part.revoked:
            return  # fetched just before a revoke: the next owner reads it
        if part.rewound_to is not None:
            if offset != part.rewound_to:
                return  # fetched before the rewind below; it comes again
            part.rewound_to = None
        if part.full:
            # The window is full: give the record back (seek) and stop fetching; librdkafka
            # had fetched ahead. It is read again when a slot frees up.
            part.rewound_to = offset
            self._rewind.append(TopicPartition(topic, partition, offset))
            return
        source = SourceRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            key=record.key(),
            value=record.value(),
            headers=tuple(record.headers() or ()),
        )
        if part.is_retry:
            self._accept_retry(part, source)
        else:
            self._accept_distribution(part, source)

    def _accept_distribution(self, part: PartitionState, source: SourceRecord) -> None:
        methods = self._paths[source.topic]
        try:
            envelope = EventEnvelope.from_kafka(
                source.topic, source.key, source.value, source.headers
            )
        except InvalidEventHeaders as exc:
            self._dead_letter_invalid(part, source, methods, f"not a Courier event: {exc}", None)
            return
        ordered = source.topic in self._ordered
        event = TrackedEvent(
            partition=part,
            source=source,
            envelope=envelope,
            state=None,
            methods=methods,
            request=delivery_request(envelope, attempt=1),
            ordering_key=source.key if ordered else None,
        )
        self._track(part, event)
        if part.claim_key(event):
            self._to_start.append(event)

    def _accept_retry(self, part: PartitionState, source: SourceRecord) -> None:
        try:
            state = RetryState.from_headers(source.headers)
        except InvalidRetryHeaders as exc:
            self._dead_letter_invalid(part, source, (), str(exc), None)
            return
        if state is None:
            self._dead_letter_invalid(
                part, source, (), "record in the retry topic has no courier-* headers", None
            )
            return
        try:
            envelope = EventEnvelope.from_kafka(
                state.original_topic, source.key, source.value, source.headers
            )
        except InvalidEventHeaders as exc:
            self._dead_letter_invalid(
                part, source, state.failed_methods, f"not a Courier event: {exc}", state
            )
            return
        event = TrackedEvent(
            partition=part,
            source=source,
            envelope=envelope,
            state=state,
            methods=state.failed_methods,
            # Delivery 1 came from the distribution topic; retry-topic delivery n is n + 1.
            request=delivery_request(envelope, attempt=state.attempt + 2),
        )
        self._track(part, event)
        if not event.methods:
            self._finish(event)
        elif state.due_at_ms > now_ms():
            heapq.heappush(self._held, (state.due_at_ms, next(self._seq), event))
        else:
            self._to_start.append(event)

    def _track(self, part: PartitionState, event: TrackedEvent) -> None:
        part.track(event)
        self._metrics.in_flight.labels(self.config.name).inc()

    def _start_due_retries(self) -> None:
        now = now_ms()
        while self._held and self._held[0][0] <= now:
            _, _, event = heapq.heappop(self._held)
            if not event.partition.revoked:
                self._to_start.append(event)

    # -- delivering -------------------------------------------------------------------------

    def _start_pending(self) -> None:
        events = [e for e in self._to_start if not (e.partition.revoked or e.partition.releasing)]
        self._to_start = []
        for event in events:
            event.running = True
        deliverer, results = self._deliverer, self._results

        def job(event: TrackedEvent) -> tuple[Any, Any]:
            assert event.request is not None

            def done(task: Any) -> None:
                if task.cancelled():
                    return  # abandoned on revoke or stop: the next reader delivers it
                exc = task.exception()
                if exc is not None:
                    logger.error("delivery task failed", exc_info=exc)
                results.put((event, None if exc else task.result()))

            return (lambda: deliverer.deliver(event.methods, event.request)), done

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
        if part.revoked:
            return
        if outcomes is None:  # a bug in the delivery task: try again rather than drop it
            self._to_start.append(event)
            return
        follower = part.release_key(event)
        if follower is not None:
            self._to_start.append(follower)
        self._log_outcomes(event, outcomes)
        assert event.envelope is not None
        if all(o.action is Action.COMMIT for o in outcomes):
            self._metrics.end_to_end.labels(self.config.name).observe(
                max(0.0, time.time() - event.envelope.time.timestamp())
            )
        plans = plan_handoffs(self.config, event.source, event.state, outcomes, now_ms())
        self._write(event, plans)

    def _dead_letter_invalid(
        self,
        part: PartitionState,
        source: SourceRecord,
        methods: Sequence[str],
        error: str,
        state: RetryState | None,
    ) -> None:
        event = TrackedEvent(
            partition=part, source=source, envelope=None, state=state, methods=(), request=None
        )
        self._track(part, event)
        logger.warning(
            "undeliverable record sent to the DLQ",
            extra={
                "consumer": self.config.name,
                "topic": source.topic,
                "partition": source.partition,
                "offset": source.offset,
                "error": error,
            },
        )
        self._write(event, [plan_invalid(self.config, source, methods, error, now_ms(), state)])

    def _write(self, event: TrackedEvent, plans: Sequence[Any]) -> None:
        if not plans:
            self._finish(event)
            return
        _, writer = self._kafka_and_writer()
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

    def _log_outcomes(self, event: TrackedEvent, outcomes: Iterable[DeliveryOutcome]) -> None:
        assert event.envelope is not None and event.request is not None
        for outcome in outcomes:
            if outcome.action is Action.COMMIT:
                continue
            logger.warning(
                "delivery failed",
                extra={
                    "event_id": event.envelope.id,
                    "event_type": event.envelope.type,
                    "consumer": self.config.name,
                    "method": outcome.method,
                    "attempt": event.request.attempt,
                    "calls": outcome.calls,
                    "status": outcome.status,
                    "action": outcome.action.value,
                    "error": outcome.details,
                },
            )

    # -- pausing and committing -------------------------------------------------------------

    def _apply_pauses(self) -> None:
        kafka, _ = self._kafka_and_writer()
        breaker_open = self._breaker.state is BreakerState.OPEN
        wanted = {tp for tp, part in self._partitions.items() if breaker_open or part.full}
        pause, resume = wanted - self._paused, self._paused - wanted
        if pause:
            kafka.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            kafka.resume([TopicPartition(t, p) for t, p in resume])
        self._paused = wanted

    def _commit(self, parts: Iterable[PartitionState]) -> None:
        kafka, _ = self._kafka_and_writer()
        moved: list[tuple[PartitionState, int]] = []
        for part in parts:
            offset = part.tracker.committable()
            if offset is not None and offset != part.last_committed:
                moved.append((part, offset))
        if not moved:
            return
        try:
            kafka.commit(
                offsets=[TopicPartition(p.topic, p.partition, o) for p, o in moved],
                asynchronous=False,
            )
        except KafkaException as exc:
            logger.warning(
                "offset commit failed; trying again",
                extra={"consumer": self.subscription.label, "error": str(exc)},
            )
            return
        for part, offset in moved:
            part.last_committed = offset
        self._metrics.commits.labels(self.config.name).inc(len(moved))

    def _update_lag(self) -> None:
        kafka, _ = self._kafka_and_writer()
        for part in self._partitions.values():
            done = part.tracker.committable()
            if done is None:
                done = part.last_committed
            try:
                _, high = kafka.get_watermark_offsets(
                    TopicPartition(part.topic, part.partition), cached=True
                )
            except KafkaException:
                continue
            if done is not None and high >= 0:
                labels = (self.config.name, part.topic, str(part.partition))
                self._lag_labels.add(labels)
                self._metrics.lag.labels(*labels).set(max(0, high - done))

    # -- rebalance and stop -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key not in self._partitions:
                self._partitions[key] = PartitionState(
                    tp.topic,
                    tp.partition,
                    self.config.batch_size,
                    is_retry=tp.topic == self.config.retry_topic
                    and tp.topic not in self.subscription.topics,
                )
        logger.info(
            "partitions assigned",
            extra={
                "consumer": self.subscription.label,
                "partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions],
            },
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = [self._partitions[k] for k in _keys(partitions) if k in self._partitions]
        grace = 0.0 if self._closing else self._settings.revoke_grace
        self._release(parts, grace)
        logger.info(
            "partitions revoked",
            extra={
                "consumer": self.subscription.label,
                "partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions],
            },
        )

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = [self._partitions[k] for k in _keys(partitions) if k in self._partitions]
        self._forget(parts)

    def _release(self, parts: list[PartitionState], grace: float) -> None:
        """Wait up to ``grace`` for these partitions' work, commit what is done, forget them."""
        if not parts:
            return
        _, writer = self._kafka_and_writer()
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
            self._start_pending()
            writer.poll(0)
            self._wait_for_result(0.02)
        writer.poll(0)
        self._commit(parts)
        self._forget(parts)

    def _forget(self, parts: list[PartitionState]) -> None:
        cancel: list[TrackedEvent] = []
        for part in parts:
            part.revoked = True
            cancel.extend(e for e in part.events.values() if e.running)
            self._metrics.in_flight.labels(self.config.name).dec(len(part.events))
            self._partitions.pop(part.tp, None)
            self._paused.discard(part.tp)
            labels = (self.config.name, part.topic, str(part.partition))
            if labels in self._lag_labels:
                self._lag_labels.discard(labels)
                self._metrics.lag.remove(*labels)
        self._to_start = [e for e in self._to_start if not e.partition.revoked]
        if cancel:
            self._grpc.call_soon(lambda: _cancel_tasks(cancel))

    def _shutdown(self) -> None:
        kafka, writer = self._kafka_and_writer()
        kafka.pause([TopicPartition(t, p) for t, p in self._partitions])
        self._held.clear()  # not due yet: read again after a restart
        self._release(list(self._partitions.values()), self._settings.shutdown_grace)
        writer.flush(5.0)
        self._closing = True
        kafka.close()
        logger.info("consumer stopped", extra={"consumer": self.subscription.label})

    def _abandon_everything(self) -> None:
        self._closing = True
        self._forget(list(self._partitions.values()))
        if self._kafka is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                self._kafka.close()


def _cancel_tasks(events: Iterable[TrackedEvent]) -> None:
    for event in events:
        if event.task is not None:
            event.task.cancel()


def _keys(partitions: Iterable[TopicPartition]) -> list[tuple[str, int]]:
    return [(tp.topic, tp.partition) for tp in partitions]
