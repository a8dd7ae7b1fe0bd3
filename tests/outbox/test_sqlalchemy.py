"""SQLAlchemy 2: ``build_event(...).save(session)`` on the dev Postgres, relayed to Kafka."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from packages.v1.events_pb2 import PackageCreated
from packages.v1.packages_pb2 import Package
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from courier import build_event
from courier.events import format_time
from courier.outbox.sqlalchemy import outbox_table
from courier.relay.testing import RelayThread, read_topic

pytestmark = pytest.mark.integration


@dataclass
class SqlWorld:
    engine: Engine
    parcels: Table
    outbox: Table


class Boom(Exception):
    pass


@pytest.fixture(scope="module")
def world(database_url: str, bootstrap_servers: str) -> Iterator[SqlWorld]:
    suffix = secrets.token_hex(3)
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    metadata = MetaData()
    parcels = Table(
        f"sa_parcel_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("status", Text, nullable=False),
    )
    outbox = outbox_table(metadata, name=f"sa_outbox_{suffix}")
    metadata.create_all(engine)
    relay = RelayThread(database_url, bootstrap_servers, table=outbox.name, slot=f"sa_{suffix}")
    relay.start()
    try:
        yield SqlWorld(engine=engine, parcels=parcels, outbox=outbox)
    finally:
        relay.stop()
        metadata.drop_all(engine)
        engine.dispose()


def _deliver(world: SqlWorld, topic: str, fail: bool) -> Any:
    with Session(world.engine) as session, session.begin():
        parcel_id = session.execute(
            insert(world.parcels).values(status="created").returning(world.parcels.c.id)
        ).scalar_one()
        envelope = build_event(
            PackageCreated(package=Package(id=str(parcel_id))), topic=topic
        ).save(session, table=world.outbox.name)
        if fail:
            raise Boom()
        return envelope


def test_outbox_table_has_the_contract_types(world: SqlWorld) -> None:
    with world.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (world.outbox.name,),
        ).all()
    assert [tuple(r) for r in rows] == [
        ("id", "uuid", "NO"),
        ("topic", "text", "NO"),
        ("key", "text", "YES"),
        ("type", "text", "NO"),
        ("source", "text", "NO"),
        ("payload", "bytea", "NO"),
        ("headers", "jsonb", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
        ("specversion", "text", "NO"),
    ]


def test_session_rollback_then_commit(
    world: SqlWorld, bootstrap_servers: str, unique: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURIER_SERVICE_NAME", "sa-parcels")
    topic = unique("sa.parcels")
    with pytest.raises(Boom):
        _deliver(world, topic, fail=True)
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(world.parcels)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(world.outbox)).scalar_one() == 0

    envelope = _deliver(world, topic, fail=False)
    records = read_topic(bootstrap_servers, topic, count=1, timeout=30, settle=1.0)
    assert len(records) == 1
    record = records[0]
    assert record.value == envelope.payload
    assert record.key == envelope.key.encode()
    assert dict(record.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": envelope.id.encode(),
        "ce_source": b"sa-parcels",
        "ce_type": b"packages.v1.PackageCreated",
        "ce_time": format_time(envelope.time).encode(),
        "content-type": b"application/protobuf",
    }
