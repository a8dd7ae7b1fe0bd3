"""Log-mode housekeeping: slot lag sampling and outbox cleanup, on an autocommit connection.

The log-based relay reads the WAL, not the table, so outbox rows can be deleted once they are
committed without losing their events; they are kept ``cleanup_after`` seconds (default one
hour) for inspection and replays, then deleted in batches using the ``created_at`` index.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2 import sql

from courier.relay.metrics import RelayMetrics

if TYPE_CHECKING:
    from courier.relay.logical import LogicalRelayConfig

log = logging.getLogger("courier.relay")


class Housekeeping:
    """Slot lag sampling and outbox cleanup, on an ordinary autocommit connection."""

    def __init__(self, config: LogicalRelayConfig, dsn: str, metrics: RelayMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self._dsn = dsn
        self._conn: Any = None
        self._next_lag = 0.0
        self._next_cleanup = time.monotonic() + 5.0

    def run_due(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_lag:
                self._next_lag = now + self.config.slot_lag_every
                self._sample_slot_lag()
            if self.config.cleanup_after is not None and now >= self._next_cleanup:
                self._next_cleanup = now + self.config.cleanup_every
                self.cleanup()
        except psycopg2.Error as exc:
            log.warning("relay housekeeping failed", extra={"error": str(exc).strip()})
            self.close()

    def cursor(self) -> Any:
        if self._conn is None:
            self._conn = psycopg2.connect(self._dsn)
            self._conn.autocommit = True
        return self._conn.cursor()

    def _sample_slot_lag(self) -> None:
        with self.cursor() as cur:
            cur.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (self.config.slot,),
            )
            row = cur.fetchone()
            if row is not None and row[0] is not None:
                self.metrics.slot_lag_bytes.set(float(row[0]))

    def cleanup(self) -> int:
        """Delete rows older than ``cleanup_after`` seconds, in batches. Returns rows deleted.

        Safe in log mode: the relay reads the WAL, not the table, so a row's removal cannot
        lose its event; rows are kept a while only for inspection and replays.
        """
        assert self.config.cleanup_after is not None
        schema, name = self.config.schema_and_table
        statement = sql.SQL(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE created_at < "
            "now() - make_interval(secs => %s) LIMIT %s)"
        ).format(t=sql.Identifier(schema, name))
        total = 0
        with self.cursor() as cur:
            while True:
                cur.execute(statement, (self.config.cleanup_after, self.config.cleanup_batch))
                total += int(cur.rowcount)
                if cur.rowcount < self.config.cleanup_batch:
                    break
        if total:
            log.info("outbox cleanup", extra={"deleted": total})
        return total

    def close(self) -> None:
        if self._conn is not None:
            with suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None
