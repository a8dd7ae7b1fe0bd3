"""Query output: a table for people, CSV and JSON for programs, every value representable."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, date, datetime

from courier.lake.output import OutputFormat, json_value, write_result
from courier.lake.query import QueryResult

ROWS = [
    ("a", 1, b"\x00\xff", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {"k": "v"}, None),
    ("b,c", 2, b"", date(2026, 1, 3), {}, 1.5),
]
COLUMNS = ["name", "n", "payload", "at", "headers", "x"]


def _result() -> QueryResult:
    return QueryResult(COLUMNS, ["VARCHAR"] * len(COLUMNS), iter(ROWS))


def test_json_is_one_array_with_base64_bytes_and_rfc3339_times() -> None:
    out = io.StringIO()
    assert write_result(_result(), OutputFormat.json, out) == 2
    document = json.loads(out.getvalue())
    assert document[0] == {
        "name": "a", "n": 1, "payload": base64.b64encode(b"\x00\xff").decode(),
        "at": "2026-01-02T03:04:05+00:00", "headers": {"k": "v"}, "x": None,
    }  # fmt: skip
    assert document[1]["at"] == "2026-01-03" and document[1]["x"] == 1.5


def test_json_of_no_rows_is_an_empty_array() -> None:
    out = io.StringIO()
    write_result(QueryResult(["a"], ["INT"], iter([])), OutputFormat.json, out)
    assert json.loads(out.getvalue()) == []


def test_csv_quotes_and_encodes() -> None:
    out = io.StringIO()
    write_result(_result(), OutputFormat.csv, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == COLUMNS
    assert rows[1] == ["a", "1", "AP8=", "2026-01-02T03:04:05+00:00", '{"k": "v"}', ""]
    assert rows[2][0] == "b,c"


def test_the_table_shows_nulls_hex_and_a_row_count() -> None:
    out = io.StringIO()
    write_result(_result(), OutputFormat.table, out)
    text = out.getvalue()
    assert "00ff" in text and "null" in text and "2 rows" in text


def test_json_values_of_odd_types() -> None:
    assert json_value(float("nan")) == "nan"
    assert json_value([b"\x01", (1, 2)]) == ["AQ==", [1, 2]]
