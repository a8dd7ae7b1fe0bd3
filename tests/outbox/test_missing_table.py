"""save() before the outbox table exists: one clear error naming the fix, nothing written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg2
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from courier import build_event
from courier.outbox.builder import OutboxTableMissing


def test_dbapi_sqlite_missing_table_is_a_clear_error() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("BEGIN")
    with pytest.raises(OutboxTableMissing, match="courier outbox create-table") as caught:
        build_event(StringValue(value="x"), topic="t.missing").save(connection)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


def test_sqlalchemy_missing_table_is_a_clear_error() -> None:
    engine = create_engine("sqlite://")
    with (
        Session(engine) as session,
        session.begin(),
        pytest.raises(OutboxTableMissing, match="'courier_outbox' does not exist"),
    ):
        build_event(StringValue(value="x"), topic="t.missing").save(session)


def test_other_database_errors_pass_through_unchanged() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE courier_outbox (id TEXT)")  # wrong shape, not missing
    connection.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError):
        build_event(StringValue(value="x"), topic="t.missing").save(connection)


@pytest.mark.integration
def test_postgres_missing_table_is_a_clear_error(
    database_url: str, unique: Callable[[str], str]
) -> None:
    table = unique("never_created")
    connection = psycopg2.connect(database_url)
    try:
        with pytest.raises(OutboxTableMissing, match=table):
            build_event(StringValue(value="x"), topic="t.missing").save(connection, table=table)
    finally:
        connection.rollback()
        connection.close()
