"""``build_event``: the metadata it fills, and ``save()`` through DB-API and SQLAlchemy.

Django and SQLAlchemy on Postgres, with a relay and Kafka, are in test_django.py and
test_sqlalchemy.py; here everything runs on SQLite in memory.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.sdk.trace import TracerProvider
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Package
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from courier import build_event
from courier.outbox.builder import OutboxTransactionError
from courier.outbox.sqlalchemy import outbox_table
from courier.outbox.table import create_table_statements
from courier.relay.records import envelope_from_row


def test_build_event_fills_the_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURIER_SERVICE_NAME", "package-service")
    before = datetime.now(UTC)
    event = build_event(PackageDelivered(package=Package(id="p-1"), received_by="Ana"))
    envelope = event.envelope
    assert uuid.UUID(envelope.id).version == 7
    assert envelope.type == "packages.v1.PackageDelivered"
    assert envelope.topic == "packages.delivered"
    assert envelope.key == "p-1"
    assert envelope.source == "package-service"
    assert before <= envelope.time <= datetime.now(UTC)
    assert PackageDelivered.FromString(envelope.payload).received_by == "Ana"
    assert dict(envelope.headers) == {}


def test_explicit_arguments_win() -> None:
    envelope = build_event(
        PackageDelivered(package=Package(id="p-1")),
        key="other",
        topic="custom.topic",
        source="svc",
        headers={"x-tenant": "t1"},
    ).envelope
    assert (envelope.key, envelope.topic, envelope.source) == ("other", "custom.topic", "svc")
    assert dict(envelope.headers) == {"x-tenant": "t1"}


def test_ids_are_time_ordered() -> None:
    ids = [build_event(Timestamp()).envelope.id for _ in range(50)]
    times = [uuid.UUID(i).int >> 80 for i in ids]
    assert times == sorted(times)


def test_traceparent_of_the_active_span_is_added() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("deliver") as span:
        envelope = build_event(Timestamp()).envelope
    context = span.get_span_context()
    assert envelope.headers["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    )
    assert "traceparent" not in build_event(Timestamp()).envelope.headers


def test_an_explicit_traceparent_is_kept() -> None:
    tracer = TracerProvider().get_tracer("test")
    mine = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    with tracer.start_as_current_span("deliver"):
        envelope = build_event(Timestamp(), headers={"traceparent": mine}).envelope
    assert envelope.headers["traceparent"] == mine


@pytest.mark.parametrize("not_a_message", [b"bytes", {"a": 1}, None, Timestamp])
def test_only_protobuf_messages_are_accepted(not_a_message: object) -> None:
    with pytest.raises(TypeError, match="protobuf message"):
        build_event(not_a_message)


def test_envelope_headers_cannot_be_overridden() -> None:
    with pytest.raises(ValueError, match="override the envelope"):
        build_event(Timestamp(), headers={"ce_id": "forged"})


def _sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in create_table_statements("sqlite", "courier_outbox"):
        conn.execute(statement)
    return conn


def test_save_on_a_dbapi_connection_commits_and_rolls_back_with_it() -> None:
    conn = _sqlite()
    conn.execute("BEGIN")
    kept = build_event(Timestamp(seconds=1), key="k").save(conn)
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    build_event(Timestamp(seconds=2), key="k").save(conn)
    conn.execute("ROLLBACK")
    rows = conn.execute("SELECT * FROM courier_outbox").fetchall()
    assert len(rows) == 1
    columns = [d[0] for d in conn.execute("SELECT * FROM courier_outbox").description]
    assert envelope_from_row(dict(zip(columns, rows[0], strict=True))) == kept


def test_save_in_autocommit_mode_is_refused_unless_allowed() -> None:
    conn = _sqlite()
    with pytest.raises(OutboxTransactionError, match="outside a transaction"):
        build_event(Timestamp()).save(conn)
    build_event(Timestamp()).save(conn, allow_outside_transaction=True)
    assert conn.execute("SELECT count(*) FROM courier_outbox").fetchone()[0] == 1


def test_save_refuses_unknown_connection_types() -> None:
    with pytest.raises(TypeError, match="SQLAlchemy"):
        build_event(Timestamp()).save(object())


def test_sqlalchemy_session_commit_and_rollback() -> None:
    engine = create_engine("sqlite://")
    table = outbox_table()
    table.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        saved = build_event(Timestamp(seconds=3), key="a").save(session)
    with Session(engine) as session:
        build_event(Timestamp(seconds=4)).save(session)
        session.rollback()
    with Session(engine) as session:
        rows = session.execute(select(table)).mappings().all()
    assert len(rows) == 1
    assert envelope_from_row(rows[0]) == saved
    assert rows[0]["created_at"].replace(tzinfo=UTC) - saved.time < timedelta(microseconds=1)


def test_sqlalchemy_autocommit_connection_and_session_are_refused() -> None:
    engine = create_engine("sqlite://", isolation_level="AUTOCOMMIT")
    outbox_table().metadata.create_all(engine)
    with engine.connect() as conn, pytest.raises(OutboxTransactionError):
        build_event(Timestamp()).save(conn)
    with Session(engine) as session, pytest.raises(OutboxTransactionError):
        build_event(Timestamp()).save(session)
    no_autobegin = Session(create_engine("sqlite://"), autobegin=False)
    with no_autobegin as session, pytest.raises(OutboxTransactionError):
        build_event(Timestamp()).save(session)
