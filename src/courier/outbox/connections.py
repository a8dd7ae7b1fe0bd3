"""Open a DB-API connection from a database URL, for the commands that are not inside an app.

``courier outbox create-table`` and the polling relay take ``--database-url``; Postgres uses
psycopg2 (a Courier dependency), SQLite the standard library, MySQL/MariaDB whichever of
PyMySQL or mysqlclient is installed.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from courier.outbox.table import Dialect, dialect_of


class DatabaseUnavailable(RuntimeError):
    """The database URL is well-formed but no connection could be opened (driver or server)."""


def connect(url: str) -> tuple[Dialect, Any]:
    """``(dialect, connection)`` for ``url``; the connection is not in autocommit mode.

    >>> dialect, conn = connect("sqlite:///:memory:")
    >>> dialect
    'sqlite'
    """
    dialect = dialect_of(url)
    if dialect == "postgresql":
        return dialect, _connect_postgres(url)
    if dialect == "sqlite":
        return dialect, connect_sqlite(url)
    return dialect, _connect_mysql(url)


def postgres_dsn(url: str) -> str:
    """A libpq URL: SQLAlchemy's ``+driver`` suffix dropped, ``postgres://`` kept as is."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _connect_postgres(url: str) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(postgres_dsn(url))
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from exc


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    prefix = url.split("://", 1)[1]
    if not prefix.startswith("/"):
        raise ValueError(f"SQLite URL must look like sqlite:///path.db, got {url!r}")
    return prefix[1:] or ":memory:"


def connect_sqlite(url: str) -> sqlite3.Connection:
    """A SQLite connection that waits for locks instead of failing at once."""
    try:
        conn = sqlite3.connect(sqlite_path(url), timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _connect_mysql(url: str) -> Any:
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or None,
        "charset": options.get("charset", "utf8mb4"),
    }
    try:
        import pymysql

        module: Any = pymysql
    except ImportError:
        try:
            import MySQLdb

            module = MySQLdb
            kwargs["passwd"] = kwargs.pop("password")
            kwargs["db"] = kwargs.pop("database")
        except ImportError as exc:
            raise DatabaseUnavailable(
                "MySQL/MariaDB needs a driver: pip install pymysql (or mysqlclient)"
            ) from exc
    try:
        conn = module.connect(**kwargs)
    except module.Error as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    conn.autocommit(False)
    return conn
