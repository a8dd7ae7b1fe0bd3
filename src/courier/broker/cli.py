"""``courier broker check`` and ``courier broker run``.

Exit codes: 0 success, 1 failure, 2 bad usage or a config with problems (one per line on
stderr, never a traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from courier import settings
from courier.broker.config import BrokerConfig, ConfigError, load_config
from courier.observability.logging import LOG_FORMAT_HELP, resolve_log_format
from courier.observability.metrics_server import DEFAULT_METRICS_HOST
from courier.observability.tracing import configure_tracing

app = typer.Typer(help="Deliver Kafka events to consumer services over gRPC.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)

CONFIG_OPTION = typer.Option(..., "--config", "-c", help="Broker YAML file.", show_default=False)


def load_or_exit(path: Path) -> BrokerConfig:
    """The config at ``path``, or its problems printed one per line and exit code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.lines():
            _error(line)
        noun = "problem" if len(exc.problems) == 1 else "problems"
        _error(f"{path}: {len(exc.problems)} {noun}")
        raise typer.Exit(2) from None


def summary_table(config: BrokerConfig) -> Table:
    """One row per (consumer, distribution topic): target, methods, retry and DLQ topics."""
    table = Table(title=f"{len(config.consumers)} consumer(s)")
    for column in ("consumer", "target", "topic", "methods", "retry, dlq", "max retries"):
        table.add_column(column, overflow="fold")
    for consumer in config.consumers.values():
        for entry in consumer.distribution:
            flags = ["dedicated"] if entry.dedicated else []
            flags += ["ordered by key"] if entry.ordering == "key" else []
            table.add_row(
                consumer.name,
                consumer.target + (" tls" if consumer.tls else ""),
                entry.topic + "".join(f"\n({flag})" for flag in flags),
                "\n".join(str(m) if m.service else f"{m.method} *" for m in entry.methods),
                f"{consumer.retry_topic}\n{consumer.dlq_topic}",
                str(consumer.max_retry_attempts),
            )
    unresolved = any(
        m.service is None
        for c in config.consumers.values()
        for d in c.distribution
        for m in d.methods
    )
    if unresolved:
        table.caption = "* service found by gRPC reflection when the broker starts"
    return table


def _error(message: str) -> None:
    _err.print(message, markup=False, highlight=False, soft_wrap=True)


@app.command("check")
def check(config: Path = CONFIG_OPTION) -> None:
    """Validate a broker config: a summary on success, every problem (file:line) otherwise."""
    broker = load_or_exit(config)
    # Piped output gets room for full topic and method names instead of rich's 80 columns.
    out = _out if _out.is_terminal else Console(width=200)
    out.print(summary_table(broker))
    _out.print(f"{config}: ok", markup=False, highlight=False, soft_wrap=True)


@app.command("run")
def run(
    config: Path = CONFIG_OPTION,
    only: list[str] = typer.Option(
        [], "--only", help="Run only this consumer (repeatable): sidecar mode."
    ),
    bootstrap_servers: str = typer.Option(
        None, "--bootstrap-servers", help="Overrides $COURIER_BOOTSTRAP_SERVERS."
    ),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve Prometheus /metrics and /healthz on this port."
    ),
    admin_port: int = typer.Option(None, "--admin-port", help="Serve the admin page on this port."),
    admin_host: str = typer.Option(
        "127.0.0.1", "--admin-host", help="Admin page bind address (loopback by default)."
    ),
    admin_token: str = typer.Option(
        None,
        "--admin-token",
        envvar="COURIER_ADMIN_TOKEN",
        show_envvar=True,
        help="Bearer token the admin page needs for replays (none: replays are refused).",
    ),
    metrics_host: str = typer.Option(
        DEFAULT_METRICS_HOST, "--metrics-host", help="Metrics bind address."
    ),
    log_format: str = typer.Option(None, "--log-format", help=LOG_FORMAT_HELP),
) -> None:
    """Deliver events from Kafka to the configured consumer services until SIGTERM."""
    broker = load_or_exit(config)
    unknown = [name for name in only if name not in broker.consumers]
    if unknown:
        known = ", ".join(broker.consumers)
        _error(f"error: --only {', '.join(unknown)}: no such consumer in {config} (known: {known})")
        raise typer.Exit(2)
    try:
        chosen_format = resolve_log_format(log_format)
    except ValueError as exc:
        _error(f"error: {exc}")
        raise typer.Exit(2) from None
    try:
        from courier.broker.runner import run_broker
    except ImportError as exc:
        _error(f"error: the delivery engine is not available: {exc}")
        raise typer.Exit(1) from None
    options: dict[str, Any] = {
        "only": list(dict.fromkeys(only)) or None,
        "bootstrap_servers": settings.bootstrap_servers(bootstrap_servers),
        "metrics_port": metrics_port,
        "metrics_host": metrics_host,
        "log_format": chosen_format,
    }
    if admin_port is not None:
        options.update(admin_port=admin_port, admin_host=admin_host, admin_token=admin_token)
    configure_tracing("courier-broker")  # only when OTEL_* variables ask for an exporter
    raise typer.Exit(run_broker(broker, **options))
