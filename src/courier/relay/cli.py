"""``courier relay run`` and ``courier relay debezium-config``."""

from __future__ import annotations

import json
import logging
import threading
from enum import StrEnum

import typer
from rich.console import Console

from courier import settings
from courier._signals import stop_on_signals
from courier.observability.logging import (
    LOG_FORMAT_HELP,
    configure_logging,
    redact_text,
    resolve_log_format,
)
from courier.observability.metrics_server import (
    DEFAULT_METRICS_HOST,
    MetricsServer,
    MetricsServerError,
)
from courier.observability.tracing import configure_tracing
from courier.outbox.connections import DatabaseUnavailable
from courier.outbox.table import InvalidTableName, check_table_name, dialect_of
from courier.relay.debezium import connector_config, connector_request
from courier.relay.errors import RelaySetupError
from courier.relay.metrics import RelayMetrics
from courier.relay.publisher import DeliveryFailed, KafkaPublisher
from courier.relay.snapshot import SnapshotFailed

app = typer.Typer(help="Ship outbox rows to Kafka.", no_args_is_help=True)
_err = Console(stderr=True)
log = logging.getLogger("courier.relay")


class Mode(StrEnum):
    log = "log"
    poll = "poll"


def _fail(message: str, code: int) -> typer.Exit:
    _err.print(f"[red]error:[/] {redact_text(message)}")
    return typer.Exit(code)


def _producer_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise _fail(f"--producer-config takes key=value, got {pair!r}", 2)
        overrides[name.strip()] = value.strip()
    return overrides


@app.command("run")
def run(
    mode: Mode = typer.Option(
        None, "--mode", help="log (Postgres logical replication; default on Postgres) or poll."
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="Overrides $COURIER_DATABASE_URL."
    ),
    bootstrap_servers: str = typer.Option(
        None, "--bootstrap-servers", help="Overrides $COURIER_BOOTSTRAP_SERVERS."
    ),
    table: str = typer.Option(settings.DEFAULT_OUTBOX_TABLE, "--table", help="Outbox table."),
    slot: str = typer.Option("courier_relay", "--slot", help="Replication slot (log mode)."),
    publication: str = typer.Option(
        "courier_outbox_pub", "--publication", help="Publication (log mode)."
    ),
    cleanup_after: float = typer.Option(
        3600.0,
        "--cleanup-after",
        help="Log mode: delete outbox rows older than this many seconds (0 = keep them).",
    ),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Poll mode: rows per round."),
    poll_interval: float = typer.Option(
        0.2, "--poll-interval", help="Poll mode: seconds to wait after an empty round."
    ),
    producer_config: list[str] = typer.Option(
        [], "--producer-config", help="Extra librdkafka producer setting key=value (repeatable)."
    ),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve /metrics and /healthz on this port."
    ),
    metrics_host: str = typer.Option(
        DEFAULT_METRICS_HOST, "--metrics-host", help="Metrics bind address."
    ),
    log_format: str = typer.Option(None, "--log-format", help=LOG_FORMAT_HELP),
) -> None:
    """Relay outbox rows to Kafka until SIGTERM; at least once, in commit order per key."""
    url = settings.database_url(database_url)
    try:
        check_table_name(table)
        dialect = dialect_of(url)
    except (InvalidTableName, ValueError) as exc:
        raise _fail(str(exc), 2) from None
    chosen = mode or (Mode.log if dialect == "postgresql" else Mode.poll)
    if chosen is Mode.log and dialect != "postgresql":
        raise _fail(f"--mode log needs Postgres; {dialect} works with --mode poll", 2)
    overrides = _producer_overrides(producer_config)
    try:
        chosen_format = resolve_log_format(log_format)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None

    stop = threading.Event()
    restore_logging = configure_logging(log_format=chosen_format)
    configure_tracing("courier-relay")  # only when OTEL_* variables ask for an exporter
    metrics = RelayMetrics(mode=chosen.value)
    server = None
    try:
        with stop_on_signals(stop.set, log):
            if metrics_port is not None:
                try:
                    server = MetricsServer(
                        metrics.registry, lambda: metrics.healthy, metrics_host, metrics_port
                    ).start()
                except MetricsServerError as exc:
                    raise _fail(str(exc), 2) from None
            publisher = KafkaPublisher(settings.bootstrap_servers(bootstrap_servers), overrides)
            if chosen is Mode.log:
                _run_log(url, table, slot, publication, cleanup_after, publisher, metrics, stop)
            else:
                _run_poll(url, table, batch_size, poll_interval, publisher, metrics, stop)
        log.info("relay stopped")
    except (DeliveryFailed, SnapshotFailed) as exc:
        log.error("relay stopped: Kafka did not take an event", extra={"error": str(exc)})
        raise typer.Exit(1) from None
    except DatabaseUnavailable as exc:
        raise _fail(f"cannot connect to the database: {exc}", 1) from None
    finally:
        if server is not None:
            server.stop()
        restore_logging()


def _run_log(
    url: str,
    table: str,
    slot: str,
    publication: str,
    cleanup_after: float,
    publisher: KafkaPublisher,
    metrics: RelayMetrics,
    stop: threading.Event,
) -> None:
    import psycopg2

    from courier.relay.logical import LogicalRelay, LogicalRelayConfig

    config = LogicalRelayConfig(
        database_url=url,
        table=table,
        slot=slot,
        publication=publication,
        cleanup_after=cleanup_after or None,
    )
    try:
        LogicalRelay(config, publisher, metrics).run(stop)
    except RelaySetupError as exc:
        raise _fail(str(exc), 2) from None
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from exc


def _run_poll(
    url: str,
    table: str,
    batch_size: int,
    poll_interval: float,
    publisher: KafkaPublisher,
    metrics: RelayMetrics,
    stop: threading.Event,
) -> None:
    from courier.relay.poll import PollRelay, PollRelayConfig

    config = PollRelayConfig(
        database_url=url, table=table, batch_size=batch_size, poll_interval=poll_interval
    )
    try:
        PollRelay(config, publisher, metrics).run(stop)
    except RelaySetupError as exc:
        raise _fail(str(exc), 2) from None
    except Exception as exc:
        if _is_database_error(exc):
            raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from exc
        raise


def _is_database_error(exc: BaseException) -> bool:
    # psycopg2.Error, sqlite3.Error, pymysql.err.Error, MySQLdb.Error: all DB-API "Error"s.
    module = type(exc).__module__.split(".", 1)[0]
    return module in ("psycopg2", "sqlite3", "pymysql", "MySQLdb")


@app.command("debezium-config")
def debezium_config(
    database_url: str = typer.Option(
        None, "--database-url", help="Overrides $COURIER_DATABASE_URL."
    ),
    table: str = typer.Option(settings.DEFAULT_OUTBOX_TABLE, "--table", help="Outbox table."),
    name: str = typer.Option("courier-outbox", "--name", help="Connector name."),
    slot: str = typer.Option("courier_debezium", "--slot", help="Debezium's own slot."),
    publication: str = typer.Option(
        "courier_debezium_pub", "--publication", help="Debezium's own publication."
    ),
    config_only: bool = typer.Option(
        False, "--config-only", help="Print only the config map (for PUT /connectors/NAME/config)."
    ),
) -> None:
    """Print the Kafka Connect JSON for Debezium 3.6.1 producing the relay's exact records."""
    url = settings.database_url(database_url)
    try:
        check_table_name(table)
        config = connector_config(
            database_url=url,
            table=table,
            slot=slot,
            publication=publication,
            topic_prefix=name,
        )
    except (InvalidTableName, ValueError) as exc:
        raise _fail(str(exc), 2) from None
    body = config if config_only else connector_request(name, config)
    typer.echo(json.dumps(body, indent=2))
