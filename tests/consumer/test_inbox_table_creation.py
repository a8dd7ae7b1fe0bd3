"""Services starting together create the shared inbox table without tripping over each other."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import MetaData, create_engine, inspect, text

from courier.consumer.sqlalchemy import create_inbox_table, inbox_table

pytestmark = pytest.mark.integration


def _create_in_threads(url: str, name: str, threads: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def create() -> None:
        engine = create_engine(url)
        try:
            barrier.wait()
            create_inbox_table(engine, inbox_table(MetaData(), name=name))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return errors


def test_concurrent_create_inbox_table_all_succeed(
    database_url: str, unique: Callable[[str], str]
) -> None:
    url = database_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = create_engine(url)
    try:
        for round_number in range(5):  # the race does not show every time without the fix
            name = unique(f"inbox_race{round_number}")
            try:
                assert _create_in_threads(url, name, threads=4) == []
                assert inspect(engine).has_table(name)
            finally:
                with engine.begin() as connection:
                    connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    finally:
        engine.dispose()
