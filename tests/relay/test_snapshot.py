"""The initial snapshot: rows committed before the relay's slot existed still reach Kafka."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.events import EventEnvelope
from courier.outbox.table import insert_statement, row_values
from courier.relay.errors import RelaySetupError
from courier.relay.snapshot import STATE_TABLE, slot_states
from courier.relay.testing import RelayThread, postgres_outbox_table, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture()
def table(unique: Any, database_url: str) -> Iterator[str]:
    with postgres_outbox_table(database_url, unique("snap_outbox")) as name:
        yield name


def _insert(database_url: str, table: str, envelopes: list[EventEnvelope]) -> None:
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cur:
        for envelope in envelopes:
            cur.execute(insert_statement("postgresql", table), row_values("postgresql", envelope))
    conn.close()


def _events(topic: str, count: int, label: str) -> list[EventEnvelope]:
    return [
        build_event(StringValue(value=f"{label}-{i}"), key=f"k{i % 7}", topic=topic).envelope
        for i in range(count)
    ]


def _states(database_url: str) -> dict[str, str]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            return slot_states(cur, "public")
    finally:
        conn.close()


def test_rows_written_before_the_slot_are_published_once_then_streaming_continues(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    topic, slot = unique("snap.before"), unique("snap_slot")
    before = _events(topic, 300, "before")
    _insert(database_url, table, before)
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot):
        assert _states(database_url)[slot] == "done"
        after = _events(topic, 200, "after")
        _insert(database_url, table, after)
        records = read_topic(bootstrap_servers, topic, count=500, timeout=60, settle=1.0)
    ids = [r.header("ce_id") for r in records]
    assert sorted(ids) == sorted(e.id for e in before + after)  # each exactly once
    assert slot not in _states(database_url)  # dropping the slot forgets its state


def test_commits_racing_the_slot_creation_are_neither_lost_nor_doubled(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    """A writer commits one event per transaction while the relay creates its slot: each
    committed row is in the snapshot or in the stream, never in neither nor in both."""
    topic, slot = unique("snap.race"), unique("race_slot")
    written: list[str] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            batch = _events(topic, 1, "race")
            _insert(database_url, table, batch)
            written.append(batch[0].id)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(0.5)
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot):
        time.sleep(0.5)
        stop.set()
        writer.join(timeout=10)
        records = read_topic(bootstrap_servers, topic, count=len(written), timeout=60, settle=1.0)
    ids = [r.header("ce_id") for r in records]
    assert len(written) > 10
    assert sorted(ids) == sorted(written)


def test_a_snapshot_that_never_finished_is_taken_again(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    """The slot exists but its snapshot never finished (a crash in the middle): the rows
    written before the slot are not in its stream, so the relay must take the snapshot again."""
    topic, slot = unique("snap.again"), unique("again_slot")
    rows = _events(topic, 50, "again")
    _insert(database_url, table, rows)
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (slot_name text PRIMARY KEY,"
            " state text NOT NULL, consistent_lsn pg_lsn NULL, snapshot_rows bigint NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (slot_name, state) VALUES (%s, 'snapshot')", (slot,)
        )
    conn.close()
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot):
        assert _states(database_url)[slot] == "done"
        records = read_topic(bootstrap_servers, topic, count=50, timeout=60, settle=1.0)
    assert sorted(r.header("ce_id") for r in records) == sorted(e.id for e in rows)


def test_a_slot_of_another_database_is_refused_with_a_clear_error(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    other_db, slot = unique("otherdb"), unique("shared_slot")
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{other_db}"')
    other = psycopg2.connect(database_url.rsplit("/", 1)[0] + f"/{other_db}")
    other.autocommit = True
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        relay = RelayThread(database_url, bootstrap_servers, table=table, slot=slot).relay
        with pytest.raises(RelaySetupError, match=f"belongs to database '{other_db}'"):
            relay.ensure_slot()
    finally:
        with other.cursor() as cur:
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        other.close()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE "{other_db}"')
        admin.close()
