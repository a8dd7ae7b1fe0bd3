"""The outbox table (DESIGN.md contract 1): its columns, its DDL per database, its INSERT.

One row is one event. The column names are the contract every writer (Django, SQLAlchemy,
plain DB-API) and every reader (the log-based relay, the polling relay, Debezium's Outbox
Event Router) agrees on::

    id uuid PK | topic text | key text NULL | type text | source text
    payload bytea | headers jsonb '{}' | created_at timestamptz

One more column rides along for Debezium's sake: ``specversion`` (constant ``'1.0'``, filled
by the database's default, never written by Courier). Kafka Connect's ``InsertHeader`` turns
the literal ``1.0`` into the number ``1``, so Debezium copies ``ce_specversion`` from this
column instead (see :mod:`courier.relay.debezium`). Courier's relays ignore it.

Postgres gets exactly those types. SQLite and MySQL/MariaDB get the nearest equivalents
(``id`` as text, ``payload`` as a blob, ``headers`` as JSON text, ``created_at`` in UTC);
:mod:`courier.relay.records` reads every variant back into the same envelope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Literal

from courier.events import EventEnvelope

Dialect = Literal["postgresql", "sqlite", "mysql"]
DIALECTS: tuple[Dialect, ...] = ("postgresql", "sqlite", "mysql")

COLUMNS: tuple[str, ...] = (
    "id",
    "topic",
    "key",
    "type",
    "source",
    "payload",
    "headers",
    "created_at",
)

# Not part of the event: a constant for Debezium's ce_specversion header (module docstring).
SPECVERSION_COLUMN = "specversion"

# A table name, optionally schema-qualified; quoting is ours, so only plain identifiers pass.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")

_POSTGRES_COLUMNS = """(
    id uuid PRIMARY KEY,
    topic text NOT NULL,
    key text NULL,
    type text NOT NULL,
    source text NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    specversion text NOT NULL DEFAULT '1.0'
)"""

_SQLITE_COLUMNS = """(
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    key TEXT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    specversion TEXT NOT NULL DEFAULT '1.0'
)"""

# MySQL has no text primary keys and no literal defaults on JSON; MariaDB's JSON is LONGTEXT.
# Writers always provide `headers`, so no default is needed there.
_MYSQL_COLUMNS = """(
    `id` CHAR(36) NOT NULL PRIMARY KEY,
    `topic` VARCHAR(249) NOT NULL,
    `key` VARCHAR(1024) NULL,
    `type` VARCHAR(512) NOT NULL,
    `source` VARCHAR(255) NOT NULL,
    `payload` LONGBLOB NOT NULL,
    `headers` JSON NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `specversion` VARCHAR(8) NOT NULL DEFAULT '1.0'
)"""


class InvalidTableName(ValueError):
    """The configured outbox table name is not a plain (optionally schema-qualified) identifier."""


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a safe table name (``courier_outbox``, ``app.courier_outbox``)."""
    if not _TABLE_NAME.match(name):
        raise InvalidTableName(
            f"outbox table name {name!r} must be an identifier such as courier_outbox "
            "or schema.courier_outbox (letters, digits, underscores)"
        )
    return name


def quote_table(dialect: Dialect, name: str) -> str:
    """The table name quoted for ``dialect`` (each dotted part on its own)."""
    check_table_name(name)
    mark = "`" if dialect == "mysql" else '"'
    return ".".join(f"{mark}{part}{mark}" for part in name.split("."))


def quote_column(dialect: Dialect, column: str) -> str:
    """A contract column quoted for ``dialect`` (``key`` is reserved in MySQL)."""
    if column not in COLUMNS:
        raise ValueError(f"not an outbox column: {column!r}")
    return f"`{column}`" if dialect == "mysql" else f'"{column}"'


def create_table_statements(dialect: Dialect, table: str) -> list[str]:
    """The idempotent DDL that creates the outbox table (and its cleanup index) on ``dialect``.

    >>> create_table_statements("sqlite", "courier_outbox")[0].splitlines()[0]
    'CREATE TABLE IF NOT EXISTS "courier_outbox" ('
    """
    quoted = quote_table(dialect, table)
    index = f"{table.replace('.', '_')}_created_at_idx"
    if dialect == "postgresql":
        return [
            f"CREATE TABLE IF NOT EXISTS {quoted} {_POSTGRES_COLUMNS}",
            f'CREATE INDEX IF NOT EXISTS "{index}" ON {quoted} (created_at)',
        ]
    if dialect == "sqlite":
        return [
            f"CREATE TABLE IF NOT EXISTS {quoted} {_SQLITE_COLUMNS}",
            f'CREATE INDEX IF NOT EXISTS "{index}" ON {quoted} (created_at)',
        ]
    if dialect == "mysql":
        # MySQL has no CREATE INDEX IF NOT EXISTS; an inline index keeps the DDL one statement.
        body = _MYSQL_COLUMNS[:-2] + f",\n    INDEX `{index}` (`created_at`)\n)"
        return [f"CREATE TABLE IF NOT EXISTS {quoted} {body} DEFAULT CHARSET=utf8mb4"]
    raise ValueError(f"unsupported database dialect: {dialect!r}")


def insert_statement(dialect: Dialect, table: str) -> str:
    """``INSERT`` of one row with DB-API placeholders (``%s`` or ``?``) in :data:`COLUMNS` order."""
    columns = ", ".join(quote_column(dialect, c) for c in COLUMNS)
    mark = "?" if dialect == "sqlite" else "%s"
    values = ", ".join(mark for _ in COLUMNS)
    return f"INSERT INTO {quote_table(dialect, table)} ({columns}) VALUES ({values})"


def row_values(dialect: Dialect, envelope: EventEnvelope) -> tuple[Any, ...]:
    """The envelope as one row of parameters for :func:`insert_statement`."""
    headers = json.dumps(dict(envelope.headers), sort_keys=True, separators=(",", ":"))
    created: Any = envelope.time.astimezone(UTC)
    if dialect == "sqlite":
        created = created.isoformat()
    elif dialect == "mysql":
        created = created.replace(tzinfo=None)
    return (
        envelope.id,
        envelope.topic,
        envelope.key,
        envelope.type,
        envelope.source,
        envelope.payload,
        headers,
        created,
    )


def dialect_of(url: str) -> Dialect:
    """The dialect of a database URL: ``postgresql://``, ``sqlite:///path``, ``mysql://``.

    SQLAlchemy-style driver suffixes (``postgresql+psycopg2://``, ``mysql+pymysql://``) and the
    ``postgres://`` and ``mariadb://`` spellings are accepted.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    aliases: dict[str, Dialect] = {
        "postgresql": "postgresql",
        "postgres": "postgresql",
        "sqlite": "sqlite",
        "mysql": "mysql",
        "mariadb": "mysql",
    }
    if scheme not in aliases or "://" not in url:
        raise ValueError(
            f"unsupported database URL {_redact(url)!r}: expected postgresql://, sqlite:/// "
            "or mysql://"
        )
    return aliases[scheme]


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def columns_sql(dialect: Dialect, columns: Sequence[str] = COLUMNS) -> str:
    """The quoted column list, for SELECTs that must match :data:`COLUMNS` order."""
    return ", ".join(quote_column(dialect, c) for c in columns)
