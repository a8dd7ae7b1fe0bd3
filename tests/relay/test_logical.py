"""Log mode details on the real stack: an idle outbox does not hold WAL back, one big
transaction arrives whole and in order, housekeeping deletes old rows and measures slot lag."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extras
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.outbox.table import COLUMNS, create_table_statements, row_values
from courier.relay.housekeeping import Housekeeping
from courier.relay.logical import LogicalRelay, LogicalRelayConfig
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import KafkaPublisher
from courier.relay.testing import RelayThread, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture()
def table(unique: Any, database_url: str) -> Iterator[str]:
    name = unique("log_outbox")
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in create_table_statements("postgresql", name):
            cur.execute(statement)
        cur.execute(f'CREATE TABLE "{name}_other" (n int)')
    yield name
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{name}", "{name}_other"')
    conn.close()


def _slot_position(cur: Any, slot: str) -> int:
    cur.execute(
        "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0') FROM pg_replication_slots "
        "WHERE slot_name = %s",
        (slot,),
    )
    return int(cur.fetchone()[0])


def test_idle_outbox_does_not_hold_wal_back(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    slot = unique("idle_slot")
    conn = psycopg2.connect(database_url, options="-c synchronous_commit=on")
    conn.autocommit = True
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot), conn.cursor() as cur:
        # Other tables keep writing WAL; the outbox stays idle.
        cur.execute(f'INSERT INTO "{table}_other" SELECT generate_series(1, 5000)')
        cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        target = int(cur.fetchone()[0])
        deadline = time.monotonic() + 20
        while _slot_position(cur, slot) < target and time.monotonic() < deadline:
            cur.execute(f'INSERT INTO "{table}_other" VALUES (0)')  # a little traffic
            time.sleep(0.2)
        assert _slot_position(cur, slot) >= target
    conn.close()


def test_one_big_transaction_arrives_whole_and_in_order(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    topic, slot = unique("big.txn"), unique("big_slot")
    count = 20_000
    envelopes = [
        build_event(StringValue(value=str(i)), key="one-key", topic=topic).envelope
        for i in range(count)
    ]
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot) as relay:
        conn = psycopg2.connect(database_url)
        with conn, conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur,
                f'INSERT INTO "{table}" ({columns}) VALUES %s',
                [row_values("postgresql", e) for e in envelopes],
                page_size=5000,
            )
        conn.close()
        records = read_topic(bootstrap_servers, topic, count=count, timeout=90)
        time.sleep(1.5)  # a confirm interval or two
        confirmed = relay.metrics.confirmed_lsn._value.get()
    assert [r.header("ce_id") for r in records] == [e.id for e in envelopes]
    assert confirmed > 0


def test_housekeeping_deletes_old_rows_and_reports_slot_lag(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    slot = unique("house_slot")
    config = LogicalRelayConfig(database_url, table=table, slot=slot, publication=f"{slot}_pub")
    metrics = RelayMetrics("log")
    relay = LogicalRelay(config, KafkaPublisher(bootstrap_servers), metrics)
    relay.ensure_slot()
    try:
        # synchronous_commit=on: the commit writes the WAL that the slot lag is measured on.
        conn = psycopg2.connect(database_url, options="-c synchronous_commit=on")
        with conn, conn.cursor() as cur:
            for age in ("2 hours", "10 minutes"):
                envelope = build_event(StringValue(value=age), topic=unique("house")).envelope
                cur.execute(
                    f'INSERT INTO "{table}" ({", ".join(COLUMNS)}) '
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s, now() - interval '{age}')",
                    row_values("postgresql", envelope)[:-1],
                )
        house = Housekeeping(config, database_url, metrics)
        assert house.cleanup() == 1  # older than the default hour
        house.run_due()
        assert metrics.slot_lag_bytes._value.get() > 0  # nobody read the slot yet
        house.close()
        with conn, conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{table}"')
            assert cur.fetchone()[0] == 1
        conn.close()
    finally:
        relay.drop_slot()


def test_table_less_events_travel_through_the_wal_only(
    table: str, database_url: str, bootstrap_servers: str, unique: Any
) -> None:
    topic, slot = unique("walonly"), unique("wal_slot")
    with RelayThread(database_url, bootstrap_servers, table=table, slot=slot):
        conn = psycopg2.connect(database_url)
        with conn:
            dropped = build_event(StringValue(value="rolled back"), key="w", topic=topic)
            dropped.save(conn, table_less=True)
            conn.rollback()
        with conn:
            kept = build_event(
                StringValue(value="kept"), key="w", topic=topic, headers={"x-tenant": "t1"}
            )
            kept.save(conn, table_less=True)
        records = read_topic(bootstrap_servers, topic, count=1, timeout=30, settle=1.0)
        with conn, conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{table}"')
            assert cur.fetchone()[0] == 0
        conn.close()
    assert len(records) == 1
    envelope = kept.envelope
    assert records[0].value == envelope.payload
    assert records[0].key == b"w"
    assert dict(records[0].headers) == dict(envelope.kafka_headers())
