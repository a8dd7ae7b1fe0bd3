"""``courier lake sink | query | compact`` (see docs/lake.md)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from courier import settings
from courier._signals import stop_on_signals
from courier.lake.buffers import MIB, RollPolicy
from courier.observability.logging import LOG_FORMAT_HELP, redact_text
from courier.observability.metrics_server import DEFAULT_METRICS_HOST

app = typer.Typer(help="Every event in Parquet files, queried with DuckDB.", no_args_is_help=True)
_err = Console(stderr=True)
log = logging.getLogger("courier.lake")


def _fail(message: str, code: int) -> typer.Exit:
    _err.print(f"[red]error:[/] {escape(redact_text(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for pair in values:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise _fail(f"{flag} takes key=value, got {pair!r}", 2)
        pairs[name.strip()] = value.strip()
    return pairs


@app.command("sink")
def sink(
    out: Path = typer.Option(..., "--out", help="Lake directory (created if missing)."),
    topics: list[str] = typer.Option(
        [], "--topics", help="Topics or globs (repeatable, or comma-separated). Default: all."
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Skip topics matching this glob (repeatable)."
    ),
    broker_config: list[Path] = typer.Option(
        [], "--broker-config", help="Broker YAML whose retry/DLQ topics are skipped (repeatable)."
    ),
    group: str = typer.Option("courier.lake", "--group", help="Kafka consumer group."),
    bootstrap_servers: str = typer.Option(
        None, "--bootstrap-servers", help="Overrides $COURIER_BOOTSTRAP_SERVERS."
    ),
    roll_size: float = typer.Option(
        64.0, "--roll-size", min=0.001, help="Roll a file at this many MiB of buffered events."
    ),
    roll_seconds: float = typer.Option(
        60.0, "--roll-seconds", min=0.01, help="Roll a file when its oldest event waited this long."
    ),
    max_buffer: float = typer.Option(
        256.0, "--max-buffer", min=0.001, help="MiB of all open buffers before the largest rolls."
    ),
    broker_copies: bool = typer.Option(
        None,
        "--keep-broker-copies/--skip-broker-copies",
        help="Store retry/DLQ copies made by the broker. Default: skip them unless --topics.",
        show_default=False,
    ),
    topic_refresh: float = typer.Option(
        30.0, "--topic-refresh", min=0.1, help="Seconds between checks for new topics."
    ),
    descriptor_set: list[Path] = typer.Option(
        [], "--descriptor-set", help="FileDescriptorSet (buf build -o) to decode payloads with."
    ),
    proto_root: list[str] = typer.Option(
        [], "--proto-root", help="Extra top-level Python package of generated protobuf code."
    ),
    consumer_config: list[str] = typer.Option(
        [], "--consumer-config", help="Extra librdkafka consumer setting key=value (repeatable)."
    ),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve Prometheus /metrics and /healthz on this port."
    ),
    metrics_host: str = typer.Option(
        DEFAULT_METRICS_HOST, "--metrics-host", help="Metrics bind address."
    ),
    log_format: str = typer.Option(None, "--log-format", help=LOG_FORMAT_HELP),
) -> None:
    """Write every event of the chosen topics to Parquet files under --out, until SIGTERM."""
    from courier.lake.decode import PayloadDecoder
    from courier.lake.metrics import LakeMetrics
    from courier.lake.parquet_writer import make_dirs_durably
    from courier.lake.sink import LakeSink, SinkConfig, SinkFailed
    from courier.lake.topics import (
        TopicConfigError,
        TopicSelection,
        broker_handoff_topics,
        split_topics,
    )
    from courier.observability.logging import configure_logging, resolve_log_format
    from courier.observability.metrics_server import MetricsServer, MetricsServerError

    overrides = _pairs(consumer_config, "--consumer-config")
    try:
        chosen_format = resolve_log_format(log_format)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    try:
        selection = TopicSelection(
            requested=split_topics(topics),
            exclude=split_topics(exclude),
            broker_topics=broker_handoff_topics(broker_config),
        )
    except TopicConfigError as exc:
        raise _fail(f"--broker-config:\n{exc}", 2) from None
    try:
        make_dirs_durably(out.resolve())
    except OSError as exc:
        raise _fail(f"cannot create the lake directory {out}: {exc.strerror or exc}", 2) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _fail(f"the lake directory {out} is not writable", 2)
    try:
        decoder = PayloadDecoder.for_generated_code(descriptor_set, proto_root)
    except (OSError, ValueError) as exc:
        raise _fail(f"--descriptor-set: {exc}", 2) from None

    config = SinkConfig(
        out=out.resolve(),
        bootstrap_servers=settings.bootstrap_servers(bootstrap_servers),
        selection=selection,
        group_id=group,
        policy=RollPolicy(
            max_bytes=max(1, int(roll_size * MIB)),
            max_age=roll_seconds,
            max_total_bytes=max(1, int(max_buffer * MIB)),
        ),
        skip_broker_copies=None if broker_copies is None else not broker_copies,
        topic_refresh=topic_refresh,
        consumer_overrides=dict(overrides),
    )
    metrics = LakeMetrics()
    lake_sink = LakeSink(config, decoder, metrics)
    stop = threading.Event()
    restore_logging = configure_logging(log_format=chosen_format)
    server = None
    try:
        with stop_on_signals(stop.set, log):
            if metrics_port is not None:
                try:
                    server = MetricsServer(
                        metrics.registry, lambda: lake_sink.healthy, metrics_host, metrics_port
                    ).start()
                except MetricsServerError as exc:
                    raise _fail(str(exc), 2) from None
            log.info("lake sink starting", extra={"out": str(config.out), "group": group})
            lake_sink.run(stop)
    except SinkFailed as exc:
        log.error("sink stopped: fatal Kafka error", extra={"error": str(exc)})
        raise typer.Exit(1) from None
    except OSError as exc:
        log.error("sink stopped: cannot write the lake", extra={"error": str(exc)})
        raise typer.Exit(1) from None
    finally:
        if server is not None:
            server.stop()
        restore_logging()


@app.command("query")
def query(
    sql: str = typer.Argument(..., help='SQL over the views, e.g. "select count(*) from events".'),
    lake: Path = typer.Option(..., "--lake", help="Lake directory written by `courier lake sink`."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Run SQL on the lake: a view `events` over all topics, and one view per topic."""
    from courier.lake.output import OutputFormat, write_result
    from courier.lake.query import LakeQueryError, query_lake

    try:
        output = OutputFormat(fmt)
    except ValueError:
        raise _fail(f"--format must be table, csv or json, not {fmt!r}", 2) from None
    if not lake.is_dir():
        raise _fail(f"no lake directory at {lake}", 2)
    try:
        result = query_lake(lake, sql)
        write_result(result, output, sys.stdout)
    except LakeQueryError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "query failed"
        raise _fail(message, exc.exit_code) from None


@app.command("compact")
def compact(
    lake: Path = typer.Option(..., "--lake", help="Lake directory written by `courier lake sink`."),
    target_size: float = typer.Option(
        64.0, "--target-size", min=0.001, help="MiB: files below this are merged, up to it."
    ),
) -> None:
    """Merge small files per topic partition and day; safe while the sink runs."""
    from courier.lake.compact import CompactionBusy, CompactionPolicy, compact_lake

    if not lake.is_dir():
        raise _fail(f"no lake directory at {lake}", 2)
    try:
        report = compact_lake(lake, CompactionPolicy(target_bytes=max(1, int(target_size * MIB))))
    except CompactionBusy as exc:
        raise _fail(str(exc), 1) from None
    except OSError as exc:
        raise _fail(f"compaction stopped: {exc}", 1) from None
    typer.echo(
        f"merged {report.files_in} files into {report.files_out} "
        f"({report.rows_out} events, {report.duplicates_dropped} duplicates dropped, "
        f"{report.temps_removed} stale temp files removed)"
    )
    for line in report.skipped:
        typer.echo(f"skipped: {line}")
