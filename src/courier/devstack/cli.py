"""``courier dev up | down | status | env``: the local stack for development and tests."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from courier.devstack import stack
from courier.devstack.config import StackConfig
from courier.devstack.jars import jar_size_bytes
from courier.devstack.processes import StackError
from courier.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL

app = typer.Typer(
    help="The local stack: PostgreSQL, Kafka (KRaft) and Kafka Connect + Debezium.",
    no_args_is_help=True,
)
err = Console(stderr=True)
out = Console()

DataDir = Annotated[Path | None, typer.Option(help="Data, logs and jars [env COURIER_DEV_DIR].")]
PgPort = Annotated[int | None, typer.Option(help="PostgreSQL port [env COURIER_DEV_PG_PORT].")]
KafkaPort = Annotated[int | None, typer.Option(help="Kafka port [env COURIER_DEV_KAFKA_PORT].")]
ConnectPort = Annotated[
    int | None, typer.Option(help="Kafka Connect REST port [env COURIER_DEV_CONNECT_PORT].")
]
KafkaVersion = Annotated[
    str | None, typer.Option(help="Apache Kafka version [env COURIER_DEV_KAFKA_VERSION].")
]


def _config(
    data_dir: Path | None = None,
    pg_port: int | None = None,
    kafka_port: int | None = None,
    connect_port: int | None = None,
    kafka_version: str | None = None,
) -> StackConfig:
    return StackConfig.from_env().with_overrides(
        data_dir=data_dir.absolute() if data_dir else None,
        postgres_port=pg_port,
        kafka_port=kafka_port,
        connect_port=connect_port,
        kafka_version=kafka_version,
    )


def bring_up(config: StackConfig, *, with_connect: bool) -> float:
    """Start the stack with a live status line; returns the seconds it took."""
    started = time.monotonic()
    with err.status("starting the local stack") as spinner:

        def progress(message: str) -> None:
            spinner.update(message)
            if not sys.stderr.isatty():
                err.print(f"[dev] {message}", highlight=False, markup=False)

        stack.up(config, with_connect=with_connect, progress=progress)
    return time.monotonic() - started


@app.command()
def up(
    with_connect: Annotated[
        bool, typer.Option("--with-connect", help="Also start Kafka Connect with Debezium.")
    ] = False,
    data_dir: DataDir = None,
    pg_port: PgPort = None,
    kafka_port: KafkaPort = None,
    connect_port: ConnectPort = None,
    kafka_version: KafkaVersion = None,
) -> None:
    """Install what is missing, start the services, and wait until each one answers."""
    config = _config(data_dir, pg_port, kafka_port, connect_port, kafka_version)
    try:
        seconds = bring_up(config, with_connect=with_connect)
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    jars_mb = (
        jar_size_bytes(config.kafka_lib_dir)
        + jar_size_bytes(config.connect_plugins_dir / "debezium-connector-postgres")
    ) / 1e6
    err.print(f"stack up in {seconds:.1f}s (jars: {jars_mb:.0f} MB in {config.data_dir / 'jars'})")
    _print_status(config)


@app.command()
def down(data_dir: DataDir = None) -> None:
    """Stop every service that ``up`` started."""
    config = _config(data_dir)
    try:
        stopped = stack.down(config)
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    err.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(
    with_connect: Annotated[
        bool, typer.Option("--with-connect", help="Also require Kafka Connect.")
    ] = False,
    data_dir: DataDir = None,
    pg_port: PgPort = None,
    kafka_port: KafkaPort = None,
    connect_port: ConnectPort = None,
) -> None:
    """Show each service, its address and log file; exit 0 only if all requested answer."""
    config = _config(data_dir, pg_port, kafka_port, connect_port)
    rows = _print_status(config)
    required = {"postgres", "kafka"} | ({"kafka-connect"} if with_connect else set())
    answering = {row.name for row in rows if row.answering}
    if not required <= answering:
        missing = ", ".join(sorted(required - answering))
        err.print(f"not answering: {missing}")
        raise typer.Exit(1)


@app.command()
def env(
    data_dir: DataDir = None,
    pg_port: PgPort = None,
    kafka_port: KafkaPort = None,
) -> None:
    """Print ``COURIER_*`` variables for the local stack: ``eval "$(courier dev env)"``."""
    config = _config(data_dir, pg_port, kafka_port)
    print(f"export {ENV_BOOTSTRAP_SERVERS}={config.bootstrap_servers}")
    print(f"export {ENV_DATABASE_URL}={config.database_url}")


def _print_status(config: StackConfig) -> list[stack.ServiceStatus]:
    rows = stack.status(config)
    if not out.is_terminal:  # one line per service, for scripts and logs
        for row in rows:
            state = "answering" if row.answering else "running" if row.running else "stopped"
            print(f"{row.name}\t{row.address}\t{state}\t{row.log_file}\t{row.detail}".rstrip())
        return rows
    table = Table(title=f"courier dev stack ({config.data_dir})")
    for column in ("service", "address", "state", "log"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row.answering:
            state = "[green]answering[/green]"
        elif row.running:
            state = "[yellow]running, not answering[/yellow]"
        else:
            state = "[red]stopped[/red]"
        if row.detail:
            state += f" ({row.detail})"
        table.add_row(row.name, row.address, state, str(row.log_file))
    out.print(table)
    return rows
