"""Polling relay (``courier relay run --mode poll``): for SQLite, MySQL/MariaDB, or Postgres.

Each round takes the oldest rows still in the table, publishes them, waits until Kafka
acknowledged all of them, then deletes them. There is no "last id seen" cursor, so a row
whose transaction commits after a later id was published is simply found by the next round:
insert order is not commit order, and nothing is skipped.

Two relays at once:

- Postgres, MySQL 8 / MariaDB 10.6+: the round's ``SELECT ... FOR UPDATE SKIP LOCKED`` holds
  its rows until they are deleted, so another relay takes the next rows, never the same;
- SQLite has no row locks: a lease row (``courier_relay_lease``) makes one relay active and
  the others stand by until the lease expires.

A crash between Kafka's ack and the DELETE resends that round: at least once, never lost.
Per-key order holds with one active relay; with several on Postgres/MySQL, two rounds may
carry rows of the same key at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from courier.outbox.connections import connect
from courier.outbox.table import COLUMNS, Dialect, columns_sql, quote_column, quote_table
from courier.relay.errors import RelaySetupError
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import DeliveryFailed, KafkaPublisher
from courier.relay.records import InvalidOutboxRow, envelope_from_row

log = logging.getLogger("courier.relay")

LEASE_TABLE = "courier_relay_lease"


def _default_relay_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class PollRelayConfig:
    """Polling settings; ``lease_seconds`` applies to SQLite only."""

    database_url: str
    table: str = "courier_outbox"
    batch_size: int = 500
    poll_interval: float = 0.2
    lease_seconds: float = 30.0
    ack_timeout: float = 130.0
    relay_id: str = field(default_factory=_default_relay_id)


class PollRelay:
    """Publishes and deletes outbox rows in rounds until ``stop`` is set."""

    def __init__(
        self, config: PollRelayConfig, publisher: KafkaPublisher, metrics: RelayMetrics
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.metrics = metrics
        self.dialect: Dialect
        self.dialect, self.conn = connect(config.database_url)
        if self.dialect == "mysql":
            # InnoDB's default REPEATABLE READ takes gap locks on the rows a round scans;
            # they block the writers' inserts. READ COMMITTED locks only the rows taken.
            with self.conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self._select = self._select_statement()
        self._check_table()
        self._lease: _SqliteLease | None = None
        if self.dialect == "sqlite":
            self._lease = _SqliteLease(self.conn, config.table, config.relay_id)

    def _select_statement(self) -> str:
        table = quote_table(self.dialect, self.config.table)
        order = quote_column(self.dialect, "id")
        limit = int(self.config.batch_size)
        select = f"SELECT {columns_sql(self.dialect)} FROM {table} ORDER BY {order} LIMIT {limit}"
        if self.dialect != "sqlite":
            select += " FOR UPDATE SKIP LOCKED"
        return select

    def _check_table(self) -> None:
        table = quote_table(self.dialect, self.config.table)
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT {columns_sql(self.dialect)} FROM {table} WHERE 1 = 0")
            cur.fetchall()
        except Exception as exc:  # each driver has its own error classes
            self.conn.close()
            raise RelaySetupError(
                f"outbox table {self.config.table} is missing or lacks the outbox columns "
                f"({str(exc).strip().splitlines()[0]}): run `courier outbox create-table`"
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                cur.close()
        if self.dialect != "sqlite":
            self.conn.rollback()

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop``; sleeps ``poll_interval`` after an empty round."""
        self.metrics.set_healthy(True)
        log.info("relay polling", extra={"table": self.config.table, "dialect": self.dialect})
        try:
            while not stop.is_set():
                if self.run_once() == 0:
                    stop.wait(self.config.poll_interval)
        finally:
            self.metrics.set_healthy(False)
            if self._lease is not None:
                self._lease.release()
            self.conn.close()

    def run_once(self) -> int:
        """One round: select, publish, wait for every ack, delete. Returns rows handled."""
        if self._lease is not None and not self._lease.acquire(self.config.lease_seconds):
            return 0
        cur = self.conn.cursor()
        try:
            cur.execute(self._select)  # Postgres/MySQL: opens the transaction holding the locks
            rows = cur.fetchall()
            if not rows:
                self._end_round(cur, [])
                return 0
            ids = [row[0] for row in rows]
            for row in rows:
                self._publish(dict(zip(COLUMNS, row, strict=True)))
            if not self.publisher.flush(self.config.ack_timeout):
                raise DeliveryFailed("?", "?", "Kafka did not acknowledge the round in time")
            self._end_round(cur, ids)
            return len(rows)
        except BaseException:
            self._rollback()
            raise
        finally:
            cur.close()

    def _publish(self, row: dict[str, Any]) -> None:
        try:
            envelope = envelope_from_row(row)
        except InvalidOutboxRow as exc:
            # It can never be published; it is deleted with the round, and logged whole.
            self.metrics.invalid_rows.inc()
            log.error(
                "deleting outbox row that is not an event",
                extra={"error": str(exc), "row": {k: repr(v)[:200] for k, v in row.items()}},
            )
            return
        created = envelope.time
        self.publisher.publish(
            envelope, lambda: self.metrics.acked(envelope.topic, created), while_waiting=None
        )

    def _end_round(self, cur: Any, ids: list[Any]) -> None:
        if ids:
            table = quote_table(self.dialect, self.config.table)
            mark = "?" if self.dialect == "sqlite" else "%s"
            marks = ", ".join(mark for _ in ids)
            statement = f"DELETE FROM {table} WHERE {quote_column(self.dialect, 'id')} IN ({marks})"
            if self.dialect == "sqlite":
                assert self._lease is not None
                self._lease.delete_if_held(statement, ids, self.config.lease_seconds)
                return
            if self.dialect == "mysql":
                # One primary-key DELETE per row: on a small or fresh table InnoDB may scan for
                # an IN list, and a scanning DELETE waits on rows other relays or writers hold.
                one = f"DELETE FROM {table} WHERE {quote_column(self.dialect, 'id')} = %s"
                cur.executemany(one, [(i,) for i in ids])
            else:
                cur.execute(statement, ids)
        if self.dialect != "sqlite":
            self.conn.commit()

    def _rollback(self) -> None:
        try:
            if self.dialect == "sqlite":
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
        except Exception as exc:  # the connection may already be gone; the error above matters
            log.warning("rollback failed", extra={"error": str(exc)})


class _SqliteLease:
    """One active relay per SQLite outbox: a row naming the holder and when its lease ends."""

    def __init__(self, conn: Any, table: str, holder: str) -> None:
        self.conn = conn
        self.name = table
        self.holder = holder
        self.held = False
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {LEASE_TABLE} "
            "(name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    def acquire(self, seconds: float) -> bool:
        """Take or renew the lease; False while another relay holds an unexpired one."""
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                f"INSERT OR IGNORE INTO {LEASE_TABLE} VALUES (?, '', 0)", (self.name,)
            )
            cur = self.conn.execute(
                f"UPDATE {LEASE_TABLE} SET holder = ?, expires_at = ? "
                "WHERE name = ? AND (holder = ? OR expires_at < ?)",
                (self.holder, now + seconds, self.name, self.holder, now),
            )
            held = bool(cur.rowcount == 1)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if held != self.held:
            log.info(
                "poll lease taken" if held else "poll lease held elsewhere; standing by",
                extra={"holder": self.holder},
            )
        self.held = held
        return held

    def delete_if_held(self, statement: str, ids: list[Any], seconds: float) -> None:
        """Delete the published rows and renew the lease, in one write transaction."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute(
                f"SELECT holder FROM {LEASE_TABLE} WHERE name = ?", (self.name,)
            ).fetchone()
            if row is None or row[0] != self.holder:
                # Our lease ran out while Kafka acked; another relay may resend these rows.
                log.warning("poll lease lost during a round", extra={"holder": self.holder})
            self.conn.execute(statement, ids)
            self.conn.execute(
                f"UPDATE {LEASE_TABLE} SET expires_at = ? WHERE name = ? AND holder = ?",
                (time.time() + seconds, self.name, self.holder),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def release(self) -> None:
        try:
            self.conn.execute(
                f"UPDATE {LEASE_TABLE} SET expires_at = 0 WHERE name = ? AND holder = ?",
                (self.name, self.holder),
            )
        except Exception as exc:  # best effort: an unreleased lease just expires
            log.warning("could not release the poll lease", extra={"error": str(exc)})
