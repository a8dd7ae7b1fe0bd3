"""The Django inbox on the dev stack's Postgres: a redelivered event does not run twice.

The scenario runs in a subprocess (Django settings are per process), in a schema of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest

from .inbox_scenario import EXPECTED

SCRIPT = Path(__file__).with_name("django_inbox_main.py")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_redelivery_on_postgres(database_url: str, unique: Callable[[str], str]) -> None:
    schema = unique("inbox_django")
    _sql(database_url, f"CREATE SCHEMA {schema}")
    try:
        run = subprocess.run(
            [sys.executable, str(SCRIPT), database_url, schema],
            capture_output=True, text=True, timeout=100, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        _sql(database_url, f"DROP SCHEMA {schema} CASCADE")
    assert seen.pop("processed") is True
    assert seen.pop("primary_key") == ["consumer", "event_id"]
    assert seen == EXPECTED


def _sql(database_url: str, statement: str) -> None:
    connection = psycopg2.connect(database_url)
    try:
        connection.autocommit = True
        connection.cursor().execute(statement)
    finally:
        connection.close()
