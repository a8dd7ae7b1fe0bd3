"""The real Debezium 3.6.1 connector, configured by ``courier relay debezium-config``, and
Courier's relay read the same outbox rows; their Kafka records are compared field by field.

Debezium runs first (its own slot and publication) until it has shipped every row; then it is
removed and the relay streams the same rows from a slot created before they were written.
The first N records on the topic are Debezium's, the next N the relay's.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.empty_pb2 import Empty
from google.protobuf.wrappers_pb2 import BytesValue, StringValue

from courier import build_event
from courier.devstack.config import StackConfig
from courier.events import EventEnvelope, format_time, parse_time, uuid7
from courier.outbox.table import create_table_statements, insert_statement, row_values
from courier.relay.debezium import connector_config
from courier.relay.testing import ConsumedRecord, RelayThread, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.connect]

PARTITIONS = 3
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CE_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")


def _rest(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def _events(topic: str) -> list[EventEnvelope]:
    """Events that probe the edges: no key, unicode key, empty payload, every byte value,
    a large payload, times with trailing-zero and zero microseconds."""
    events = [
        build_event(
            StringValue(value=f"n{i}"), key=f"order-{i % 7}", topic=topic, source="shop"
        ).envelope
        for i in range(20)
    ]
    events.append(build_event(Empty(), key=None, topic=topic, source="shop").envelope)
    events.append(
        build_event(
            BytesValue(value=bytes(range(256))), key="chave-ç-ü-日本", topic=topic, source="shop"
        ).envelope
    )
    events.append(
        build_event(
            BytesValue(value=b"x" * 200_000), key="big", topic=topic, source="shop"
        ).envelope
    )
    events.append(
        build_event(
            StringValue(value="traced"),
            key="traced",
            topic=topic,
            source="shop",
            headers={"traceparent": TRACEPARENT},
        ).envelope
    )
    for micro in (0, 120000, 5):
        events.append(
            EventEnvelope(
                id=str(uuid7()),
                type="google.protobuf.StringValue",
                source="shop",
                time=datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=UTC),
                topic=topic,
                payload=StringValue(value=str(micro)).SerializeToString(),
                key=f"t{micro}",
            )
        )
    return events


@pytest.fixture()
def outbox(unique: Any, database_url: str, bootstrap_servers: str) -> Iterator[dict[str, str]]:
    table = unique("dbz_outbox")
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in create_table_statements("postgresql", table):
            cur.execute(statement)
    topic = unique("dbz.events")
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    yield {"table": table, "topic": topic}
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.close()
    admin.delete_topics([topic])


def _drop_debezium_slot(database_url: str, slot: str, publication: str) -> None:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for _ in range(120):
            cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            row = cur.fetchone()
            if row is None:
                break
            if not row[0]:
                cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                break
            time.sleep(0.5)
        cur.execute(f'DROP PUBLICATION IF EXISTS "{publication}"')
    conn.close()


def _slot_active(database_url: str, slot: str) -> bool:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            row = cur.fetchone()
            return bool(row and row[0])
    finally:
        conn.close()


def test_debezium_and_the_relay_write_the_same_records(
    outbox: dict[str, str],
    connect_stack: StackConfig,
    database_url: str,
    bootstrap_servers: str,
    unique: Any,
) -> None:
    base = connect_stack.connect_url
    table, topic = outbox["table"], outbox["topic"]
    name = unique("courier-dbz")
    dbz_slot, dbz_pub = unique("dbz_slot"), unique("dbz_pub")
    relay = RelayThread(database_url, bootstrap_servers, table=table, slot=unique("cmp_slot"))
    relay.relay.ensure_slot()  # the relay's slot exists before any row is written
    config = connector_config(
        database_url=database_url,
        table=table,
        slot=dbz_slot,
        publication=dbz_pub,
        topic_prefix=name,
    )
    created = False
    try:
        _rest(base, "POST", "/connectors", {"name": name, "config": config})
        created = True
        _wait(
            "the connector task to run",
            lambda: (
                (_rest(base, "GET", f"/connectors/{name}/status")["tasks"] or [{}])[0].get("state")
                == "RUNNING"
            ),
        )
        _wait("Debezium's slot", lambda: _slot_active(database_url, dbz_slot))

        events = _events(topic)
        conn = psycopg2.connect(database_url)
        with conn, conn.cursor() as cur:
            for envelope in events:
                cur.execute(
                    insert_statement("postgresql", table), row_values("postgresql", envelope)
                )
        conn.close()
        debezium = read_topic(bootstrap_servers, topic, count=len(events), timeout=120)
        assert len(debezium) == len(events), _rest(base, "GET", f"/connectors/{name}/status")
    finally:
        if created:
            _rest(base, "DELETE", f"/connectors/{name}")
        _drop_debezium_slot(database_url, dbz_slot, dbz_pub)

    with relay:
        both = read_topic(bootstrap_servers, topic, count=2 * len(events), timeout=60, settle=1)
    assert len(both) == 2 * len(events)
    first_ids = {r.header("ce_id") for r in debezium}
    ours = [r for r in both if r.offset >= _offset_after(debezium, r.partition)]
    assert {r.header("ce_id") for r in ours} == first_ids == {e.id for e in events}

    by_id = {r.header("ce_id"): r for r in debezium}
    time_texts: list[tuple[str, str]] = []
    for mine in ours:
        theirs = by_id[mine.header("ce_id")]
        if mine.header("traceparent"):
            # Documented difference: the jsonb `headers` column is not spread into headers.
            assert theirs.header("traceparent") is None
            mine = ConsumedRecord(
                mine.topic,
                mine.partition,
                mine.offset,
                mine.key,
                mine.value,
                tuple(h for h in mine.headers if h[0] != "traceparent"),
            )
        theirs_view, mine_view = _comparable(theirs), _comparable(mine)
        time_theirs = theirs_view["headers"].pop("ce_time")
        time_mine = mine_view["headers"].pop("ce_time")
        assert theirs_view == mine_view
        assert parse_time(time_theirs) == parse_time(time_mine)
        if time_theirs != time_mine:
            time_texts.append((time_theirs, time_mine))
    # Debezium 3.6.1 prints timestamptz with all 6 fraction digits; courier.events.format_time
    # trims trailing zeros. Same instant, different text: strict once format_time pads.
    if format_time(datetime(2026, 1, 1, 0, 0, 0, 120000, tzinfo=UTC)).endswith(".120000Z"):
        assert time_texts == []
    else:
        print(
            f"\n[debezium] ce_time spelled differently for {len(time_texts)} events, e.g. "
            f"{time_texts[:2]}"
        )
        assert all(t.endswith("0Z") for t, _ in time_texts)
    # Header order differs (documented): Debezium appends the InsertHeader constants.
    assert [k for k, _ in debezium[0].headers] == [
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_specversion",
        "content-type",
    ]


def _offset_after(records: list[ConsumedRecord], partition: int) -> int:
    offsets = [r.offset for r in records if r.partition == partition]
    return max(offsets) + 1 if offsets else 0


def _comparable(record: ConsumedRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        # Without a key the partition is the producer's free choice (sticky / random).
        "partition": record.partition if record.key is not None else None,
        "key": record.key,
        "value": record.value or b"",
        "value_is_null": record.value is None,
        "headers": {name: record.header(name) for name in CE_HEADERS},
        "header_names": sorted(name for name, _ in record.headers),
    }
