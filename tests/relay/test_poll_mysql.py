"""Poll mode on MySQL/MariaDB: out-of-order commits and two relays (SKIP LOCKED).

The dev stack has no MySQL, so this runs only when ``COURIER_TEST_MYSQL_URL`` points at one
(``mysql://user:pw@127.0.0.1:3306/db``, MySQL 8 or MariaDB 10.6+) and PyMySQL is installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from courier import build_event
from courier.outbox.connections import connect
from courier.outbox.table import create_table_statements
from courier.relay.testing import read_topic

MYSQL_URL = os.environ.get("COURIER_TEST_MYSQL_URL", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MYSQL_URL, reason="set COURIER_TEST_MYSQL_URL to run against MySQL"),
]


@pytest.fixture()
def mysql_table(unique: Any) -> Iterator[str]:
    pytest.importorskip("pymysql")
    table = unique("poll_outbox")
    _, conn = connect(MYSQL_URL)
    with conn.cursor() as cur:
        for statement in create_table_statements("mysql", table):
            cur.execute(statement)
    conn.commit()
    yield table
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
    conn.commit()
    conn.close()


def _writer(table: str, topic: str, seed: int, ids: list[str]) -> None:
    _, conn = connect(MYSQL_URL)
    try:
        for batch in range(20):
            for _ in range(10):
                event = build_event(
                    StringValue(value=f"{seed}/{batch}"), key=f"w{seed}", topic=topic
                )
                ids.append(event.save(conn, table=table).id)
            time.sleep(0.005 * ((seed + batch) % 4))  # commits interleave out of id order
            conn.commit()
    finally:
        conn.close()


def test_mysql_out_of_order_commits_and_two_relays(
    mysql_table: str,
    bootstrap_servers: str,
    courier_env: dict[str, str],
    unique: Any,
    tmp_path: Path,
) -> None:
    topic = unique("poll.mysql")
    relays = [
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
                MYSQL_URL,
                "--table",
                mysql_table,
                "--batch-size",
                "25",
                "--poll-interval",
                "0.05",
            ],
            env=courier_env,
            stdout=(tmp_path / f"relay{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in range(2)
    ]
    try:
        _, slow = connect(MYSQL_URL)
        slow_event = build_event(StringValue(value="slow"), key="slow", topic=topic)
        slow_event.save(slow, table=mysql_table)  # oldest id, committed last
        ids: list[list[str]] = [[] for _ in range(3)]
        writers = [
            threading.Thread(target=_writer, args=(mysql_table, topic, n, ids[n])) for n in range(3)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(60)
        expected = {i for batch in ids for i in batch}
        early = read_topic(bootstrap_servers, topic, count=len(expected), timeout=60)
        assert {r.header("ce_id") for r in early} == expected
        slow.commit()
        slow.close()
        records = read_topic(
            bootstrap_servers, topic, count=len(expected) + 1, timeout=60, settle=2.0
        )
    finally:
        for relay in relays:
            relay.send_signal(signal.SIGTERM)
        codes = [relay.wait(30) for relay in relays]
    assert codes == [0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("relay*.log")]
    counts = Counter(r.header("ce_id") for r in records)
    assert set(counts) == expected | {slow_event.envelope.id}
    assert max(counts.values()) == 1
