"""Print a query's rows: a rich table for people, CSV or JSON for programs.

Values that have no plain text form are written as:

============  ======================  ============================  ======================
value         table                   CSV                           JSON
============  ======================  ============================  ======================
NULL          ``null`` (dimmed)       empty field                   ``null``
bytes         hex, first 32 bytes     base64                        base64 string
timestamp     RFC 3339                RFC 3339                      RFC 3339 string
map / list    JSON                    JSON                          object / array
============  ======================  ============================  ======================

``--format json`` prints one JSON array, streamed row by row.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, TextIO
from uuid import UUID

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from courier.lake.query import QueryResult

_TABLE_BYTES = 32


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def write_result(result: QueryResult, fmt: OutputFormat, out: TextIO) -> int:
    """Write ``result`` to ``out`` in ``fmt``; returns the number of rows written."""
    writer: Callable[[QueryResult, TextIO], int] = {
        OutputFormat.table: _write_table,
        OutputFormat.csv: _write_csv,
        OutputFormat.json: _write_json,
    }[fmt]
    return writer(result, out)


def json_value(value: Any) -> Any:
    """A value as JSON can hold it (bytes -> base64, times -> RFC 3339, maps -> objects)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        finite = value == value and value not in (float("inf"), float("-inf"))
        return value if finite else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [json_value(v) for v in value]
    return str(value)


def _text(value: Any, *, for_table: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if for_table:
            more = "…" if len(raw) > _TABLE_BYTES else ""
            return raw[:_TABLE_BYTES].hex() + more
        return base64.b64encode(raw).decode("ascii")
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(json_value(value), ensure_ascii=False)
    return str(value)


def _write_table(result: QueryResult, out: TextIO) -> int:
    table = Table(show_lines=False, header_style="bold")
    for name in result.columns:
        table.add_column(name, overflow="fold")
    count = 0
    for row in result.rows:
        table.add_row(
            *("[dim]null[/]" if v is None else escape(_text(v, for_table=True)) for v in row)
        )
        count += 1
    console = Console(file=out, width=None if out.isatty() else 200, soft_wrap=False)
    console.print(table)
    console.print(f"[dim]{count} row{'s' if count != 1 else ''}[/]")
    return count


def _write_csv(result: QueryResult, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    count = 0
    for row in result.rows:
        writer.writerow([_text(v, for_table=False) for v in row])
        count += 1
    return count


def _write_json(result: QueryResult, out: TextIO) -> int:
    out.write("[")
    count = 0
    for row in result.rows:
        record = {name: json_value(v) for name, v in zip(result.columns, row, strict=True)}
        out.write(("\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
