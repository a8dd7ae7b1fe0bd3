"""The initial snapshot: rows already in the outbox when the relay's slot is created.

A logical replication slot streams only what commits after its creation. Rows written
before it (the relay started after the application, or the slot was dropped and
recreated) would never reach Kafka. As Debezium's ``snapshot.mode=initial`` does, the relay
creates its slot with an exported snapshot, publishes every row visible in that snapshot,
waits for Kafka to acknowledge them all, and only then streams from the slot's consistent
point: each committed row is in exactly one of the two, so nothing falls in between.

Progress is kept in ``courier_relay_slots`` (next to the outbox table): ``snapshot`` while
the rows are being published, ``done`` after. A relay that finds its slot with a snapshot
that never finished (a crash in the middle) drops the slot and takes the snapshot again:
the slot has confirmed nothing yet, so this resends rows but loses none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing, suppress
from functools import partial
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql

from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import KafkaPublisher
from courier.relay.records import InvalidOutboxRow, envelope_from_row

log = logging.getLogger("courier.relay")

STATE_TABLE = "courier_relay_slots"
SNAPSHOT_FLUSH_TIMEOUT = 300.0

__all__ = ["STATE_TABLE", "SlotState", "SnapshotFailed", "publish_snapshot", "slot_states"]


class SnapshotFailed(RuntimeError):
    """Kafka did not acknowledge every snapshot row in time; the next start retries."""


class SlotState:
    """Read and write one slot's row in :data:`STATE_TABLE` over an autocommit cursor."""

    SNAPSHOT = "snapshot"
    DONE = "done"

    def __init__(self, cur: Any, schema: str, slot: str) -> None:
        self.cur = cur
        self.slot = slot
        self.table = sql.Identifier(schema, STATE_TABLE)

    def ensure_table(self) -> None:
        # Two relays starting together both pass IF NOT EXISTS; the second then fails (on a
        # catalog unique index, or "already exists") once the first one's table is committed.
        with suppress(psycopg2.errors.UniqueViolation, psycopg2.errors.DuplicateTable):
            self.cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (slot_name text PRIMARY KEY,"
                    " state text NOT NULL, consistent_lsn pg_lsn NULL, snapshot_rows bigint NULL,"
                    " updated_at timestamptz NOT NULL DEFAULT now())"
                ).format(self.table)
            )

    def get(self) -> str | None:
        self.cur.execute(
            sql.SQL("SELECT state FROM {} WHERE slot_name = %s").format(self.table), (self.slot,)
        )
        row = self.cur.fetchone()
        return None if row is None else str(row[0])

    def set(self, state: str, lsn: str | None = None, rows: int | None = None) -> None:
        self.cur.execute(
            sql.SQL(
                "INSERT INTO {} (slot_name, state, consistent_lsn, snapshot_rows)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (slot_name) DO UPDATE SET"
                " state = EXCLUDED.state, consistent_lsn = EXCLUDED.consistent_lsn,"
                " snapshot_rows = EXCLUDED.snapshot_rows, updated_at = now()"
            ).format(self.table),
            (self.slot, state, lsn, rows),
        )

    def forget(self) -> None:
        self.cur.execute(
            sql.SQL("DELETE FROM {} WHERE slot_name = %s").format(self.table), (self.slot,)
        )


def slot_states(cur: Any, schema: str) -> dict[str, str]:
    """Every slot's state (for ``status`` output and tests)."""
    cur.execute(
        sql.SQL("SELECT slot_name, state FROM {}").format(sql.Identifier(schema, STATE_TABLE))
    )
    return {str(name): str(state) for name, state in cur.fetchall()}


def publish_snapshot(
    dsn: str,
    schema: str,
    table: str,
    slot: str,
    publisher: KafkaPublisher,
    metrics: RelayMetrics,
) -> tuple[str, int]:
    """Create ``slot`` with an exported snapshot and publish the rows visible in it.

    Returns the slot's consistent point and the number of rows published, after Kafka
    acknowledged every one. Streaming must start only after this returns.
    """
    replication = psycopg2.connect(
        dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    with closing(replication):
        repl_cur = replication.cursor()
        repl_cur.execute(
            sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
                sql.Identifier(slot)
            )
        )
        created = repl_cur.fetchone()
        if created is None:
            raise SnapshotFailed(f"CREATE_REPLICATION_SLOT {slot} returned nothing")
        _name, consistent_point, snapshot_name, _plugin = created
        count = 0
        for row in _rows_in_snapshot(dsn, schema, table, snapshot_name):
            try:
                envelope = envelope_from_row(row)
            except InvalidOutboxRow as exc:
                metrics.invalid_rows.inc()
                log.error("skipping outbox row that is not an event", extra={"error": str(exc)})
                continue
            publisher.publish(envelope, partial(metrics.acked, envelope.topic, envelope.time))
            count += 1
            if count % 1000 == 0:
                publisher.poll(0)
    if not publisher.flush(SNAPSHOT_FLUSH_TIMEOUT):
        raise SnapshotFailed(
            f"{publisher.in_flight} snapshot rows still unacknowledged after "
            f"{SNAPSHOT_FLUSH_TIMEOUT:.0f}s; the snapshot is taken again at the next start"
        )
    return str(consistent_point), count


def _rows_in_snapshot(
    dsn: str, schema: str, table: str, snapshot_name: str
) -> Iterator[dict[str, Any]]:
    """The table's rows as the snapshot sees them, each column in its text form (as pgoutput
    sends it, so both paths build the same envelope), oldest first."""
    with closing(psycopg2.connect(dsn)) as conn:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            cur.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum",
                (f'"{schema}"."{table}"',),
            )
            columns = [str(name) for (name,) in cur.fetchall()]
        select = sql.SQL("SELECT {} FROM {} ORDER BY created_at, id").format(
            sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier(name)) for name in columns
            ),
            sql.Identifier(schema, table),
        )
        with conn.cursor(name="courier_relay_snapshot") as rows:
            rows.itersize = 2000
            rows.execute(select)
            for values in rows:
                yield dict(zip(columns, values, strict=True))
        conn.commit()
