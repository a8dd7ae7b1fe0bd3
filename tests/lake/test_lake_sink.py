"""The lake on real Kafka: exact counts, decoded JSON, kill -9, lost commits, compaction."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import json_format

from courier.events import EventEnvelope
from courier.lake.buffers import RollPolicy
from courier.lake.compact import CompactionReport, compact_lake
from courier.lake.decode import PayloadDecoder
from courier.lake.files import list_lake_files
from courier.lake.query import open_lake
from courier.lake.sink import LakeSink, SinkConfig
from courier.lake.topics import TopicSelection

from .lake_helpers import delivered_event, delivered_message
from .sink_harness import (
    committed,
    create_topics,
    free_port,
    lake_query,
    produce,
    rows_on_disk,
    start_sink,
    stop,
    wait_for,
    wait_until_committed,
)

pytestmark = pytest.mark.integration


def test_20000_events_across_three_topics_exact_counts_and_decoded_json(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    counts = {
        unique("lake.orders"): 9_000,
        unique("lake.parcels"): 7_000,
        unique("lake.bills"): 4_000,
    }
    raw = unique("lake.raw")
    topics = [*counts, raw]
    create_topics(bootstrap_servers, topics)
    events = [delivered_event(topic, n) for topic, count in counts.items() for n in range(count)]
    known = events[4242]
    unknown_type = EventEnvelope(
        id="unknown-type-1", type="acme.v1.Mystery", source="t", time=datetime.now(UTC),
        topic=raw, payload=b"\x08\x01",
    )  # fmt: skip
    produce(bootstrap_servers, [*events, unknown_type], extra=[
        {"topic": raw, "value": b"no headers at all"},
        {"topic": raw, "value": None, "key": b"k", "headers": [("ce_id", b"tomb")]},
    ])  # fmt: skip

    lake, group, port = tmp_path / "lake", unique("lake.group"), free_port()
    sink = start_sink(bootstrap_servers, lake, group, topics, tmp_path / "sink.log",
                      "--roll-seconds", "1", "--metrics-port", str(port))  # fmt: skip
    try:
        wait_until_committed(bootstrap_servers, group, topics)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            metrics = reply.read().decode()
        assert f'courier_lake_events_written_total{{topic="{raw}"}} 3.0' in metrics
        assert f'courier_lake_invalid_records_total{{topic="{raw}"}} 2.0' in metrics
        assert stop(sink) == 0
    finally:
        if sink.poll() is None:
            sink.kill()

    rows = lake_query(lake, "select topic, count(*) as n from events group by 1 order by 1")
    assert {r["topic"]: r["n"] for r in rows} == {**counts, raw: 3}
    distinct = lake_query(lake, "select count(distinct id) as n from events where id is not null")
    assert distinct == [{"n": 20_001}]

    [row] = lake_query(lake, f"select * from events where id = '{known.id}'")
    message = delivered_message(4242 % 9_000)
    assert json.loads(row["payload_json"]) == json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert row["type"] == "packages.v1.PackageDelivered" and row["key"] == known.key
    assert row["headers"] == {"traceparent": known.headers["traceparent"]}
    assert row["date"] == known.time.date().isoformat()
    [fields] = lake_query(lake, (
        "select payload_json->>'$.received_by' as who, "
        "payload_json->>'$.package.recipient.city' as city from events "
        f"where id = '{known.id}'"
    ))  # fmt: skip
    assert fields == {"who": message.received_by, "city": "São Paulo"}

    odd = lake_query(lake, (
        "select id, payload_json, decode_error, envelope_error from "
        f"{raw.replace('.', '_')} order by id nulls last, envelope_error"
    ))  # fmt: skip
    assert [r["id"] for r in odd] == ["unknown-type-1", None, None]
    assert odd[0]["payload_json"] is None and "unknown type" in odd[0]["decode_error"]
    assert odd[0]["envelope_error"] is None
    assert "missing header 'ce_id'" in odd[1]["envelope_error"]
    assert "tombstone" in odd[2]["envelope_error"]


def test_kill_9_mid_stream_then_restart_exact_by_event_id(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group, lake = unique("lake.crash"), unique("lake.group"), tmp_path / "lake"
    total = 15_000
    create_topics(bootstrap_servers, [topic])
    produced: list[EventEnvelope] = []

    def keep_producing() -> None:
        for batch in range(10):
            events = [delivered_event(topic, batch * 1_500 + n) for n in range(1_500)]
            produced.extend(produce(bootstrap_servers, events))
            time.sleep(0.3)

    reports: list[CompactionReport] = []
    compacting = threading.Event()

    failures: list[BaseException] = []

    def keep_compacting() -> None:
        while not compacting.wait(0.3):
            try:
                reports.append(compact_lake(lake))
            except BaseException as exc:
                failures.append(exc)

    producer = threading.Thread(target=keep_producing)
    compactor = threading.Thread(target=keep_compacting)
    producer.start()
    log = tmp_path / "sink.log"
    # The broker's minimum session timeout: the restarted sink need not wait 45 s for the
    # killed member to be declared dead before the group rebalances.
    small_files = ("--roll-size", "0.2", "--roll-seconds", "0.3",
                   "--consumer-config", "session.timeout.ms=6000")  # fmt: skip
    sink = start_sink(bootstrap_servers, lake, group, [topic], log, *small_files)
    try:
        wait_for(lambda: rows_on_disk(lake) >= total // 3, 60, "a third of the events on disk")
        sink.send_signal(signal.SIGKILL)
        assert sink.wait(10) == -signal.SIGKILL
        at_kill = rows_on_disk(lake)
        assert at_kill < total, "the kill must land mid-stream"
        sink = start_sink(bootstrap_servers, lake, group, [topic], log, *small_files)
        compactor.start()  # compaction runs again and again while the restarted sink writes
        producer.join(60)
        wait_until_committed(bootstrap_servers, group, [topic])
        assert stop(sink) == 0
    finally:
        producer.join(60)
        compacting.set()
        compactor.join(60)
        if sink.poll() is None:
            sink.kill()

    ids = {e.id for e in produced}
    assert len(ids) == total
    found = lake_query(lake, "select id from events")
    assert len(found) == total, f"{len(found) - total:+d} events (raw rows {rows_on_disk(lake)})"
    assert {r["id"] for r in found} == ids
    print(
        f"\nkill -9 at {at_kill} rows on disk; {len(reports)} compactions during the restart "
        f"merged {sum(r.files_in for r in reports)} files; raw rows {rows_on_disk(lake)}"
    )
    assert not failures and sum(r.files_in for r in reports) > 0
    compact_lake(lake)
    after = lake_query(lake, "select count(*) as n, count(distinct id) as d from events")
    assert after == [{"n": total, "d": total}]
    assert open_lake(lake)[1].deduped_files == 0


def _run_sink_in_process(
    bootstrap_servers: str, lake: Path, group: str, topic: str, policy: RollPolicy
) -> None:
    config = SinkConfig(
        out=lake,
        bootstrap_servers=bootstrap_servers,
        selection=TopicSelection(requested=(topic,)),
        group_id=group,
        policy=policy,
    )
    sink = LakeSink(config, PayloadDecoder.for_generated_code())
    halt = threading.Event()
    runner = threading.Thread(target=sink.run, args=(halt,))
    runner.start()
    try:
        wait_until_committed(bootstrap_servers, group, [topic], timeout=60)
    finally:
        halt.set()
        runner.join(30)


def test_files_written_again_after_lost_commits_are_read_once_and_compacted(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """The crash window between a file's rename and its offset commit, made wide open:
    a second sink with fresh offsets re-reads everything and cuts it differently."""
    topic, lake = unique("lake.rewrite"), tmp_path / "lake"
    create_topics(bootstrap_servers, [topic])
    events = produce(bootstrap_servers, [delivered_event(topic, n) for n in range(3_000)])
    _run_sink_in_process(
        bootstrap_servers, lake, unique("first"), topic, RollPolicy(max_bytes=40_000, max_age=0.2)
    )
    first_files = len(list_lake_files(lake))
    _run_sink_in_process(
        bootstrap_servers, lake, unique("second"), topic, RollPolicy(max_bytes=150_000, max_age=0.2)
    )

    written = rows_on_disk(lake)
    assert written > 3_000
    con, views = open_lake(lake)
    assert views.deduped_files == len(list_lake_files(lake)) > first_files
    assert con.execute("select count(*), count(distinct id) from events").fetchall() == [
        (3_000, 3_000)
    ]
    report = compact_lake(lake)
    assert report.duplicates_dropped == written - 3_000
    con, views = open_lake(lake)
    assert views.deduped_files == 0 and rows_on_disk(lake) == 3_000
    ids = {row[0] for row in con.execute("select id from events").fetchall()}
    assert ids == {e.id for e in events}


def test_a_write_error_stops_the_sink_with_nothing_committed(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group, lake = unique("lake.broken"), unique("lake.group"), tmp_path / "lake"
    create_topics(bootstrap_servers, [topic])
    produce(bootstrap_servers, [delivered_event(topic, n) for n in range(100)])
    lake.mkdir()
    (lake / f"topic={topic}").write_text("a file where a directory must go")
    log = tmp_path / "sink.log"
    sink = start_sink(bootstrap_servers, lake, group, [topic], log, "--roll-seconds", "0.2")
    try:
        assert sink.wait(60) == 1
    finally:
        if sink.poll() is None:
            sink.kill()
    assert "cannot write the lake" in log.read_text()
    assert set(committed(bootstrap_servers, group, topic).values()) == {-1001}


def test_topic_patterns_pick_up_new_topics_and_skip_broker_copies(
    bootstrap_servers: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique("lake.glob")
    early, late, excluded = f"{prefix}.early", f"{prefix}.late", f"{prefix}.scratch"
    group, lake = unique("lake.group"), tmp_path / "lake"
    create_topics(bootstrap_servers, [early, excluded])
    copy = delivered_event(early, 99)
    produce(
        bootstrap_servers,
        [delivered_event(early, n) for n in range(50)]
        + [delivered_event(excluded, n) for n in range(5)],
        extra=[{  # what the broker writes to a retry topic: the event plus bookkeeping
            "topic": early, "value": copy.payload,
            "headers": [*copy.kafka_headers(), ("courier-original-topic", early.encode())],
        }],
    )  # fmt: skip
    sink = start_sink(bootstrap_servers, lake, group, [f"{prefix}.*"], tmp_path / "sink.log",
                      "--exclude", "*.scratch", "--topic-refresh", "0.5",
                      "--roll-seconds", "0.2", "--skip-broker-copies")  # fmt: skip
    try:
        wait_until_committed(bootstrap_servers, group, [early])
        create_topics(bootstrap_servers, [late])
        produce(bootstrap_servers, [delivered_event(late, n) for n in range(20)])
        wait_until_committed(bootstrap_servers, group, [early, late])
        assert stop(sink) == 0
    finally:
        if sink.poll() is None:
            sink.kill()
    rows = lake_query(lake, "select topic, count(*) as n from events group by 1 order by 1")
    assert rows == [{"topic": early, "n": 50}, {"topic": late, "n": 20}]
    assert lake_query(lake, f"select count(*) as n from events where id = '{copy.id}'") == [
        {"n": 0}
    ]
