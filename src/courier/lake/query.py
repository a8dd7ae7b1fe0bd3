"""``courier lake query``: DuckDB views over the lake's files.

Views, rebuilt from the directory listing on every :func:`open_lake`:

- ``events``: every row of every topic, plus ``date`` (from the ``date=`` directory);
- one view per topic, named as the topic (``"packages.delivered"``, quoted in SQL because of
  the dot) and, when free, with ``.`` and ``-`` turned into ``_`` (``packages_delivered``).

Each record appears once. Files whose offset ranges overlap another file's (a crash
between a file's rename and its offset commit, or a compaction caught between writing its
output and deleting its inputs) are read with a dedupe on ``(topic, partition, offset)``;
all other files are read as they are, so filters still reach Parquet statistics.

A query that loses a race with compaction (a listed file deleted before DuckDB opened it)
is run again on a fresh listing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from courier.lake.files import LakeFile, list_lake_files
from courier.lake.ranges import overlap_groups
from courier.lake.schema import LAKE_SCHEMA

EVENTS_VIEW = "events"
_RETRIES = 3
_USAGE_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)
_READ_OPTIONS = (
    "hive_partitioning = true, union_by_name = true, "
    "hive_types = {'topic': 'VARCHAR', 'date': 'DATE'}, hive_types_autocast = false"
)


class LakeQueryError(RuntimeError):
    """DuckDB refused or failed the query; the message is DuckDB's.

    ``exit_code`` is 2 when the SQL itself is wrong (syntax, unknown table or column), 1
    when it failed while running.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LakeViews:
    """What :func:`open_lake` found and defined."""

    files: int
    deduped_files: int
    topic_views: dict[str, list[str]]  # topic -> view names


@dataclass
class QueryResult:
    """Column names and a row iterator (rows are fetched lazily)."""

    columns: list[str]
    types: list[str]
    rows: Iterator[tuple[Any, ...]]


def open_lake(
    root: Path, connection: duckdb.DuckDBPyConnection | None = None
) -> tuple[duckdb.DuckDBPyConnection, LakeViews]:
    """A DuckDB connection with the lake's views defined (an empty ``events`` if no files)."""
    con = connection or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = list_lake_files(root)
    groups = overlap_groups(files, lambda f: f.name)
    plain = [group[0] for group in groups if len(group) == 1]
    overlapping = [f for group in groups if len(group) > 1 for f in group]
    parts = []
    if plain:
        parts.append(f"SELECT * FROM read_parquet({_paths(plain)}, {_READ_OPTIONS})")
    if overlapping:
        parts.append(
            "SELECT * EXCLUDE (filename, _lake_rank) FROM ("
            "SELECT *, row_number() OVER ("
            'PARTITION BY topic, "partition", "offset" ORDER BY filename) AS _lake_rank '
            f"FROM read_parquet({_paths(overlapping)}, {_READ_OPTIONS}, filename = true)"
            ") WHERE _lake_rank = 1"
        )
    if not parts:
        con.register("_lake_empty", LAKE_SCHEMA.empty_table())
        parts.append("SELECT *, CAST(NULL AS DATE) AS date FROM _lake_empty")
    con.execute(f"CREATE OR REPLACE VIEW {EVENTS_VIEW} AS " + " UNION ALL BY NAME ".join(parts))
    topic_views = _define_topic_views(con, sorted({f.topic for f in files}))
    return con, LakeViews(len(files), len(overlapping), topic_views)


def query_lake(root: Path, sql: str) -> QueryResult:
    """Run ``sql`` against the lake's views; :class:`LakeQueryError` if DuckDB refuses it."""
    last_error: Exception | None = None
    for _ in range(_RETRIES):
        con, _views = open_lake(root)
        try:
            cursor = con.execute(sql)
        except duckdb.IOException as exc:
            if _is_vanished_file(exc):
                last_error = exc
                continue
            raise LakeQueryError(str(exc)) from None
        except _USAGE_ERRORS as exc:
            raise LakeQueryError(str(exc), exit_code=2) from None
        except duckdb.Error as exc:
            raise LakeQueryError(str(exc)) from None
        description = cursor.description or []
        return QueryResult(
            [d[0] for d in description],
            [str(d[1]) for d in description],
            _fetch(cursor),
        )
    raise LakeQueryError(f"files kept vanishing while reading the lake: {last_error}")


def view_name(topic: str) -> str:
    """The alias of a topic's view that needs no quotes: ``a.b-c`` -> ``a_b_c``."""
    return re.sub(r"[.-]", "_", topic)


def _define_topic_views(
    con: duckdb.DuckDBPyConnection, topics: Sequence[str]
) -> dict[str, list[str]]:
    taken = {EVENTS_VIEW}
    aliases = [view_name(t) for t in topics]
    names: dict[str, list[str]] = {}
    for topic, alias in zip(topics, aliases, strict=True):
        candidates = [topic]
        if alias != topic and aliases.count(alias) == 1 and alias not in topics:
            candidates.append(alias)
        names[topic] = []
        for name in candidates:
            if name in taken:
                continue
            taken.add(name)
            con.execute(
                f"CREATE OR REPLACE VIEW {_ident(name)} AS "
                f"SELECT * FROM {EVENTS_VIEW} WHERE topic = {_literal(topic)}"
            )
            names[topic].append(name)
    return names


def _fetch(cursor: duckdb.DuckDBPyConnection, size: int = 2048) -> Iterator[tuple[Any, ...]]:
    while rows := cursor.fetchmany(size):
        yield from rows


def _paths(files: Sequence[LakeFile]) -> str:
    return "[" + ", ".join(_literal(str(f.path)) for f in files) + "]"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_vanished_file(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such file" in text or "cannot open file" in text or "not found" in text
