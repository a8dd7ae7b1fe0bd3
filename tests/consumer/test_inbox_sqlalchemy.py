"""The SQLAlchemy inbox: a redelivered event does not run the handler twice.

On the dev stack's Postgres (integration) and on SQLite (unit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from courier.consumer import inbox_ddl
from courier.consumer.sqlalchemy import SqlAlchemyInbox, create_inbox_table, inbox_table

from .inbox_scenario import EXPECTED, run_scenario


def _scenario(engine: Engine, table_name: str, *, concurrent: bool = True) -> dict[str, Any]:
    metadata = MetaData()
    table = inbox_table(metadata, name=table_name)
    deliveries = Table(
        f"{table_name}_deliveries",
        metadata,
        Column("event_id", String(255)),
        Column("handler", String(255)),
    )
    metadata.create_all(engine)
    inbox = SqlAlchemyInbox(sessionmaker(engine), consumer="service-a", table=table)

    def record(event_id: str, handler: str) -> None:
        inbox.session.execute(deliveries.insert().values(event_id=event_id, handler=handler))

    def stored(event_id: str) -> int:
        with engine.connect() as connection:
            query = select(func.count()).where(deliveries.c.event_id == event_id)
            return int(connection.execute(query).scalar_one())

    try:
        seen = run_scenario(inbox, record, stored)
        assert inbox.processed("e1", "EndpointA")
        assert not inbox.processed("e9", "EndpointA")
        assert inbox.purge(timedelta(0)) == 4  # A:e1, B:e1, A:e2, A:e3
        assert not inbox.processed("e1", "EndpointA")
        return seen
    finally:
        metadata.drop_all(engine)


@pytest.mark.integration
def test_redelivery_on_postgres(database_url: str, unique: Callable[[str], str]) -> None:
    engine = create_engine(_psycopg2(database_url), pool_size=8)
    try:
        assert _scenario(engine, unique("inbox")) == EXPECTED
    finally:
        engine.dispose()


@pytest.fixture()
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'consumer.db'}", connect_args={"timeout": 30})
    yield engine
    engine.dispose()


def test_redelivery_on_sqlite(sqlite_engine: Engine) -> None:
    assert _scenario(sqlite_engine, "courier_inbox") == EXPECTED


def test_create_table_is_idempotent_and_matches_the_raw_ddl(sqlite_engine: Engine) -> None:
    create_inbox_table(sqlite_engine)
    create_inbox_table(sqlite_engine)
    with sqlite_engine.connect() as connection:
        created = (
            connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'courier_inbox' ORDER BY name"
            )
            .scalars()
            .all()
        )
        raw = sqlite_engine.raw_connection()
        try:
            raw.executescript(inbox_ddl("sqlite"))  # type: ignore[attr-defined]
        finally:
            raw.close()
    assert created == [
        "courier_inbox",
        "courier_inbox_processed_at",
        "sqlite_autoindex_courier_inbox_1",
    ]


@pytest.mark.integration
def test_raw_postgres_ddl_creates_the_same_table(
    database_url: str, unique: Callable[[str], str]
) -> None:
    name = unique("inbox_ddl")
    engine = create_engine(_psycopg2(database_url))
    try:
        with engine.begin() as connection:
            for statement in filter(str.strip, inbox_ddl("postgresql", name).split(";")):
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql(inbox_ddl("postgresql", name).split(";")[0])  # again: no-op
        reflected = Table(name, MetaData(), autoload_with=engine)
        assert [c.name for c in reflected.primary_key.columns] == ["consumer", "event_id"]
        assert {c.name for c in reflected.columns} == {"consumer", "event_id", "processed_at"}
        inbox = SqlAlchemyInbox(sessionmaker(engine), "svc", table=inbox_table(name=name))
        with inbox.transaction("e1") as claim:
            assert not claim.duplicate
        with inbox.transaction("e1") as claim:
            assert claim.duplicate
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        engine.dispose()


def test_session_outside_a_delivery_is_an_error() -> None:
    inbox = SqlAlchemyInbox(sessionmaker(), consumer="service-a")
    with pytest.raises(RuntimeError, match="no inbox transaction here"):
        _ = inbox.session


def test_unknown_dialect_ddl_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: mysql, postgresql, sqlite"):
        inbox_ddl("oracle")
    assert "INSERT" not in inbox_ddl("mysql") and "PRIMARY KEY (consumer, event_id)" in inbox_ddl(
        "mysql"
    )


def _psycopg2(url: str) -> str:
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the project ships psycopg2.
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)
