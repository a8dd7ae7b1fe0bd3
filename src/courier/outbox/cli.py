"""``courier outbox create-table``: the outbox table for services without Django or Alembic."""

from __future__ import annotations

import typer
from rich.console import Console

from courier import settings
from courier.outbox.connections import DatabaseUnavailable, connect
from courier.outbox.table import (
    InvalidTableName,
    check_table_name,
    create_table_statements,
    dialect_of,
)

app = typer.Typer(help="The transactional outbox table.", no_args_is_help=True)
_err = Console(stderr=True)


@app.command("create-table")
def create_table(
    database_url: str = typer.Option(
        None, "--database-url", help="postgresql://, sqlite:///path or mysql:// URL."
    ),
    table: str = typer.Option(settings.DEFAULT_OUTBOX_TABLE, "--table", help="Table name."),
    print_sql: bool = typer.Option(False, "--print-sql", help="Print the DDL, change nothing."),
) -> None:
    """Create the outbox table (contract 1) if it does not exist. Safe to run again."""
    url = settings.database_url(database_url)
    try:
        check_table_name(table)
        dialect = dialect_of(url)
    except (InvalidTableName, ValueError) as exc:
        _err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    statements = create_table_statements(dialect, table)
    if print_sql:
        for statement in statements:
            typer.echo(statement + ";")
        return
    try:
        _, conn = connect(url)
    except DatabaseUnavailable as exc:
        _err.print(f"[red]error:[/] cannot connect to the database: {exc}")
        raise typer.Exit(1) from None
    try:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
        conn.commit()
    except Exception as exc:  # the driver's own error class varies by database
        _err.print(f"[red]error:[/] creating {table}: {str(exc).strip().splitlines()[0]}")
        raise typer.Exit(1) from None
    finally:
        conn.close()
    typer.echo(f"outbox table {table} ready ({dialect})")
