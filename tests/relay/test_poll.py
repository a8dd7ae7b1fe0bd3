"""``courier relay run --mode poll``: commits out of id order, and two relays at once.

Postgres: concurrent writers hold their transactions open for random times, so ids commit
out of order (one writer is forced to commit its early id last); two relay processes share
the table through ``FOR UPDATE SKIP LOCKED``. SQLite: two relays share one file through the
lease. Every event must arrive, none twice, and the table must end empty.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.outbox.table import create_table_statements
from courier.relay.testing import postgres_outbox_table, read_topic

pytestmark = pytest.mark.integration

WRITERS = 4
EVENTS_PER_WRITER = 400


def _start_relays(env: dict[str, str], url: str, table: str, log_dir: Path) -> list[Any]:
    relays = []
    for n in range(2):
        out = (log_dir / f"relay{n}.log").open("wb")
        relays.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "courier",
                    "relay",
                    "run",
                    "--mode",
                    "poll",
                    "--database-url",
                    url,
                    "--table",
                    table,
                    "--batch-size",
                    "50",
                    "--poll-interval",
                    "0.05",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    return relays


def _stop_relays(relays: list[Any]) -> list[int]:
    for relay in relays:
        if relay.poll() is None:
            relay.send_signal(signal.SIGTERM)
    return [relay.wait(30) for relay in relays]


def _logs(log_dir: Path) -> list[str]:
    return [p.read_text()[-2000:] for p in sorted(log_dir.glob("relay*.log"))]


@pytest.fixture()
def pg_table(unique: Any, database_url: str) -> Iterator[str]:
    with postgres_outbox_table(database_url, unique("poll_outbox")) as table:
        yield table


def _writer(url: str, table: str, topic: str, seed: int, ids: list[str]) -> None:
    rnd = random.Random(seed)
    conn = psycopg2.connect(url)
    try:
        written = 0
        while written < EVENTS_PER_WRITER:
            size = min(rnd.randint(1, 20), EVENTS_PER_WRITER - written)
            with conn:
                for _ in range(size):
                    event = build_event(StringValue(value=f"w{seed}"), key=f"w{seed}", topic=topic)
                    ids.append(event.save(conn, table=table).id)
                time.sleep(rnd.random() * 0.03)  # commit later than others' later ids
            written += size
    finally:
        conn.close()


def test_postgres_out_of_order_commits_and_two_relays(
    pg_table: str,
    database_url: str,
    bootstrap_servers: str,
    courier_env: dict[str, str],
    unique: Any,
    tmp_path: Path,
) -> None:
    topic = unique("poll.events")
    relays = _start_relays(courier_env, database_url, pg_table, tmp_path)
    try:
        # The slow transaction: its id is older than everything the writers insert, and it
        # commits after they have all been published.
        slow = psycopg2.connect(database_url)
        slow_event = build_event(StringValue(value="slow"), key="slow", topic=topic)
        slow_event.save(slow, table=pg_table)

        ids: list[list[str]] = [[] for _ in range(WRITERS)]
        writers = [
            threading.Thread(target=_writer, args=(database_url, pg_table, topic, n, ids[n]))
            for n in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(120)
        expected = {i for batch in ids for i in batch}
        early = read_topic(bootstrap_servers, topic, count=len(expected), timeout=60)
        early_ids = {r.header("ce_id") for r in early}
        # All published, the uncommitted slow one not.
        assert early_ids == expected, (
            f"missing {len(expected - early_ids)}, unexpected {early_ids - expected}, "
            f"slow={slow_event.envelope.id}; logs: {_logs(tmp_path)}"
        )
        slow.commit()
        slow.close()

        total = len(expected) + 1
        records = read_topic(bootstrap_servers, topic, count=total, timeout=60, settle=2.0)
    finally:
        codes = _stop_relays(relays)
    assert codes == [0, 0], _logs(tmp_path)

    counts = Counter(r.header("ce_id") for r in records)
    assert set(counts) == expected | {slow_event.envelope.id}, _logs(tmp_path)
    twice = [i for i, c in counts.items() if c > 1]
    assert not twice, f"published twice: {twice}; logs: {_logs(tmp_path)}"
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{pg_table}"')
        assert cur.fetchone()[0] == 0  # published rows are deleted
    conn.close()


def test_sqlite_two_relays_share_one_lease(
    tmp_path: Path, bootstrap_servers: str, courier_env: dict[str, str], unique: Any
) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    topic = unique("poll.sqlite")
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in create_table_statements("sqlite", "courier_outbox"):
        conn.execute(statement)
    relays = _start_relays(courier_env, url, "courier_outbox", tmp_path)
    try:
        ids = []
        for batch in range(20):
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(25):
                event = build_event(StringValue(value=str(batch)), key=f"b{batch % 3}", topic=topic)
                ids.append(event.save(conn).id)
            conn.execute("COMMIT")
            time.sleep(0.02)
        records = read_topic(bootstrap_servers, topic, count=len(ids), timeout=60, settle=1.5)
        holders = conn.execute("SELECT holder FROM courier_relay_lease").fetchall()
    finally:
        codes = _stop_relays(relays)
    assert codes == [0, 0], _logs(tmp_path)
    counts = Counter(r.header("ce_id") for r in records)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert len(holders) == 1  # one lease row for the table, one holder at a time
    assert conn.execute("SELECT count(*) FROM courier_outbox").fetchone()[0] == 0
