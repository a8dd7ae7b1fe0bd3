"""Log-based relay: stream outbox inserts from a ``pgoutput`` slot and confirm LSNs after acks.

The loss-free rule: the slot is confirmed (``flush_lsn``) only up to the end of the longest
prefix of transactions whose every record Kafka has acknowledged. A crash anywhere resends
from that point: duplicates are possible, losses are not.

Big transactions: Postgres decodes a transaction at its commit and spills large ones to disk;
the relay publishes each insert as it arrives, so memory holds at most the producer queue,
never a whole transaction.

psycopg2 note: on a server keepalive, psycopg2 moves its flush position to the keepalive's
``wal_end`` when the flush position we set is at or past the last data message's start. In
the middle of a transaction that began before our last confirmed commit this would confirm
unacknowledged rows. The server sends such mid-transaction keepalives only when the client
has been silent for ``wal_sender_timeout / 2``; the relay therefore sends status feedback at
least every ``feedback_interval`` seconds, also while it waits on Kafka.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections import deque
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql

from courier.events import EventEnvelope
from courier.outbox import wal
from courier.outbox.connections import postgres_dsn
from courier.relay import pgoutput
from courier.relay.errors import RelaySetupError
from courier.relay.housekeeping import Housekeeping
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import KafkaPublisher
from courier.relay.records import InvalidOutboxRow, envelope_from_row
from courier.relay.snapshot import SlotState, publish_snapshot

log = logging.getLogger("courier.relay")

__all__ = ["LogicalRelay", "LogicalRelayConfig", "LsnTracker", "RelaySetupError"]


class _Transaction:
    __slots__ = ("end_lsn", "pending")

    def __init__(self) -> None:
        self.pending = 0
        self.end_lsn: int | None = None


class LsnTracker:
    """Which LSN may be confirmed: the end of the acknowledged prefix of transactions.

    >>> t = LsnTracker(); a = t.begin(); t.sent(a); t.commit(a, 100)
    >>> t.confirmable()
    0
    >>> t.acked(a); t.confirmable()
    100
    """

    def __init__(self) -> None:
        self._transactions: deque[_Transaction] = deque()
        self._confirmable = 0

    def begin(self) -> _Transaction:
        txn = _Transaction()
        self._transactions.append(txn)
        return txn

    def sent(self, txn: _Transaction) -> None:
        txn.pending += 1

    def acked(self, txn: _Transaction) -> None:
        txn.pending -= 1

    def commit(self, txn: _Transaction, end_lsn: int) -> None:
        txn.end_lsn = end_lsn

    def confirmable(self) -> int:
        """Advance past every leading transaction that is committed and fully acknowledged."""
        queue = self._transactions
        while queue and queue[0].end_lsn is not None and queue[0].pending == 0:
            end = queue.popleft().end_lsn
            assert end is not None
            self._confirmable = max(self._confirmable, end)
        return self._confirmable

    @property
    def open_transactions(self) -> int:
        return len(self._transactions)


@dataclass(frozen=True)
class LogicalRelayConfig:
    """Where to stream from. ``table`` may be schema-qualified (default schema ``public``)."""

    database_url: str
    table: str = "courier_outbox"
    slot: str = "courier_relay"
    publication: str = "courier_outbox_pub"
    feedback_interval: float = 5.0
    confirm_interval: float = 0.2
    cleanup_after: float | None = 3600.0
    cleanup_every: float = 60.0
    slot_lag_every: float = 5.0
    cleanup_batch: int = 5000

    @property
    def schema_and_table(self) -> tuple[str, str]:
        schema, _, name = self.table.rpartition(".")
        return schema or "public", name


class LogicalRelay:
    """Streams the outbox table's inserts to Kafka until ``stop`` is set."""

    def __init__(
        self, config: LogicalRelayConfig, publisher: KafkaPublisher, metrics: RelayMetrics
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.metrics = metrics
        self._dsn = postgres_dsn(config.database_url)

    # -- setup -----------------------------------------------------------------------------

    def ensure_slot(self) -> bool:
        """Create the publication and the slot if missing; True when the slot was created now.

        Raises :class:`RelaySetupError` when the table is missing or Postgres refuses (no
        ``wal_level=logical``, no REPLICATION privilege); connection errors pass through.
        """
        try:
            return self._ensure_slot()
        except psycopg2.Error as exc:
            if exc.pgcode is None:  # no SQLSTATE: the connection itself failed
                raise
            first_line = str(exc).strip().splitlines()[0]
            raise RelaySetupError(f"cannot set up logical replication: {first_line}") from exc

    def _ensure_slot(self) -> bool:
        schema, name = self.config.schema_and_table
        with closing(_connect(self._dsn)) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',))
            if cur.fetchone()[0] is None:
                raise RelaySetupError(
                    f"outbox table {schema}.{name} does not exist: run "
                    "`courier outbox create-table` or your migrations first"
                )
            cur.execute(
                "SELECT 1 FROM pg_publication WHERE pubname = %s", (self.config.publication,)
            )
            if cur.fetchone() is None:
                statement = sql.SQL(
                    "CREATE PUBLICATION {} FOR TABLE {}.{} WITH (publish = 'insert')"
                ).format(
                    sql.Identifier(self.config.publication),
                    sql.Identifier(schema),
                    sql.Identifier(name),
                )
                with suppress(psycopg2.errors.DuplicateObject):  # another relay was first
                    cur.execute(statement)
            state = SlotState(cur, schema, self.config.slot)
            state.ensure_table()
            lock_key = f"courier_relay_slot:{schema}:{self.config.slot}"
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_key,))
            try:
                return self._ensure_slot_locked(cur, state, schema, name)
            finally:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_key,))

    def _ensure_slot_locked(self, cur: Any, state: SlotState, schema: str, name: str) -> bool:
        cur.execute(
            "SELECT plugin, database, current_database() FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.config.slot,),
        )
        row = cur.fetchone()
        if row is not None:
            plugin, database, ours = row
            if database != ours:  # slot names are cluster-wide, a slot reads one database
                raise RelaySetupError(
                    f"replication slot {self.config.slot!r} belongs to database {database!r}, "
                    f"not {ours!r}: give this relay its own --slot"
                )
            if plugin != "pgoutput":
                raise RelaySetupError(
                    f"replication slot {self.config.slot!r} uses plugin {plugin!r}, "
                    "not pgoutput: choose another --slot"
                )
            known = state.get()
            if known != SlotState.SNAPSHOT:
                if known is None:  # a slot made before Courier kept state: it streams as is
                    state.set(SlotState.DONE)
                return False
            log.warning(
                "the initial snapshot of this slot did not finish; taking it again",
                extra={"slot": self.config.slot},
            )
            cur.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
        state.set(SlotState.SNAPSHOT)
        lsn, rows = publish_snapshot(
            self._dsn, schema, name, self.config.slot, self.publisher, self.metrics
        )
        state.set(SlotState.DONE, lsn=lsn, rows=rows)
        log.info(
            "replication slot created; initial snapshot published",
            extra={"slot": self.config.slot, "consistent_lsn": lsn, "rows": rows},
        )
        return True

    def drop_slot(self) -> None:
        """Drop the slot (waiting briefly for it to become inactive) and the publication."""
        with closing(_connect(self._dsn)) as conn, conn.cursor() as cur:
            for _ in range(50):
                cur.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                    (self.config.slot,),
                )
                row = cur.fetchone()
                if row is None:
                    break
                if not row[0]:
                    cur.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
                    break
                time.sleep(0.1)
            schema, _table = self.config.schema_and_table
            with suppress(psycopg2.errors.UndefinedTable):
                SlotState(cur, schema, self.config.slot).forget()
            cur.execute(
                sql.SQL("DROP PUBLICATION IF EXISTS {}").format(
                    sql.Identifier(self.config.publication)
                )
            )

    # -- the stream ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Stream until ``stop``; reconnects after a lost connection or while the slot is busy."""
        self.ensure_slot()
        backoff = 1.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._stream(stop)
                return
            except psycopg2.errors.ObjectInUse:
                log.info(
                    "replication slot is in use by another relay; standing by",
                    extra={"slot": self.config.slot},
                )
                stop.wait(2.0)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                log.warning("replication connection lost; reconnecting", extra={"error": str(exc)})
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it had been streaming: a fresh failure, not a retry storm
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _stream(self, stop: threading.Event) -> None:
        conn = psycopg2.connect(
            self._dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        session = _StreamSession(self, conn)
        try:
            session.start()
            self.metrics.set_healthy(True)
            log.info(
                "relay streaming",
                extra={"slot": self.config.slot, "table": self.config.table},
            )
            session.loop(stop)
            session.finish()
        finally:
            self.metrics.set_healthy(False)
            session.close()


class _StreamSession:
    """One replication connection: decode, publish, track, confirm, keep house."""

    def __init__(self, relay: LogicalRelay, conn: Any) -> None:
        self.relay = relay
        self.config = relay.config
        self.conn = conn
        self.cur = conn.cursor()
        self.tracker = LsnTracker()
        self.relations: dict[int, tuple[str, ...] | None] = {}
        self.txn: _Transaction | None = None
        self.commit_time: datetime | None = None
        self.confirmed = 0
        self.last_feedback = 0.0
        self.housekeeping = Housekeeping(relay.config, relay._dsn, relay.metrics)

    def start(self) -> None:
        self.cur.start_replication(
            slot_name=self.config.slot,
            decode=False,
            status_interval=self.config.feedback_interval,
            options={
                "proto_version": "1",
                "publication_names": self.config.publication,
                "messages": "true",  # table-less events (courier.outbox.wal)
            },
        )

    def loop(self, stop: threading.Event) -> None:
        handled = 0
        while not stop.is_set():
            message = self.cur.read_message()
            if message is not None:
                self.handle(message.payload)
                handled += 1
                if handled % 512 == 0:
                    self.service()
                continue
            self.service()
            waiting = self.relay.publisher.in_flight > 0
            select.select([self.cur], [], [], 0.005 if waiting else 0.2)

    def finish(self) -> None:
        """Graceful stop: wait for outstanding acks, confirm what is safe."""
        if not self.relay.publisher.flush(30.0):
            log.warning(
                "stopping with unacknowledged events; the next run sends them again",
                extra={"in_flight": self.relay.publisher.in_flight},
            )
        self.feedback(force=True)

    def close(self) -> None:
        with suppress(psycopg2.Error):
            self.conn.close()
        self.housekeeping.close()

    def handle(self, payload: bytes) -> None:
        message = pgoutput.decode(payload)
        if isinstance(message, pgoutput.Insert):
            columns = self.relations.get(message.relation_oid)
            if columns is not None:
                self.publish(dict(zip(columns, message.values, strict=False)))
        elif isinstance(message, pgoutput.Begin):
            self.txn = self.tracker.begin()
            self.commit_time = message.commit_time
        elif isinstance(message, pgoutput.Commit):
            if self.txn is not None:
                self.tracker.commit(self.txn, message.end_lsn)
            self.txn = None
        elif isinstance(message, pgoutput.LogicalMessage):
            if message.prefix == wal.MESSAGE_PREFIX and message.transactional:
                try:
                    row = wal.decode_row(message.content)
                except ValueError as exc:
                    self.relay.metrics.invalid_rows.inc()
                    log.error("skipping unreadable outbox message", extra={"error": str(exc)})
                else:
                    self.publish(row)
        elif isinstance(message, pgoutput.Relation):
            schema, name = self.config.schema_and_table
            ours = (message.namespace, message.name) == (schema, name)
            self.relations[message.oid] = message.columns if ours else None

    def publish(self, row: dict[str, Any]) -> None:
        if self.txn is None or self.commit_time is None:
            raise pgoutput.PgoutputError("insert outside a transaction")
        try:
            envelope = envelope_from_row(row)
        except InvalidOutboxRow as exc:
            self.relay.metrics.invalid_rows.inc()
            log.error("skipping outbox row that is not an event", extra={"error": str(exc)})
            return
        txn, committed = self.txn, self.commit_time
        self.tracker.sent(txn)
        self.relay.publisher.publish(
            envelope, _Ack(self, txn, envelope, committed), while_waiting=self.keep_alive
        )

    def service(self) -> None:
        self.relay.publisher.poll(0)
        self.feedback()
        self.housekeeping.run_due()

    def keep_alive(self) -> None:
        """While blocked on Kafka: still tell the server we are alive (see module docstring)."""
        self.feedback()

    def feedback(self, force: bool = False) -> None:
        """Confirm the acknowledged prefix: at most every ``confirm_interval`` while it moves
        (fewer resends after a crash), and a status message every ``feedback_interval``
        regardless (liveness, see the module docstring)."""
        lsn = self.tracker.confirmable()
        now = time.monotonic()
        due = now - self.last_feedback >= self.config.feedback_interval
        moved = lsn > self.confirmed and now - self.last_feedback >= self.config.confirm_interval
        if due or moved or force:
            self.cur.send_feedback(write_lsn=lsn, flush_lsn=lsn, apply_lsn=lsn, force=True)
            self.last_feedback = now
            if lsn > self.confirmed:
                self.confirmed = lsn
                self.relay.metrics.confirmed_lsn.set(lsn)


class _Ack:
    __slots__ = ("committed", "envelope", "session", "txn")

    def __init__(
        self,
        session: _StreamSession,
        txn: _Transaction,
        envelope: EventEnvelope,
        committed: datetime,
    ) -> None:
        self.session = session
        self.txn = txn
        self.envelope = envelope
        self.committed = committed

    def __call__(self) -> None:
        self.session.tracker.acked(self.txn)
        self.session.relay.metrics.acked(self.envelope.topic, self.committed)


def _connect(dsn: str) -> Any:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn
