"""``courier demo``: the whole path of an event, end to end, on the local stack.

It brings the stack up, starts the relay, the broker and the two example consumer
services, produces package events through the example Django service, shows live
progress, and ends with a reconciliation: every produced event delivered to each consumer
method that should have it, or in that consumer's DLQ. Exit 0 only when nothing is
missing. Everything the demo started is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from courier.broker.config import BrokerConfig
from courier.demo.accounting import Accountant, Snapshot, routes_for
from courier.demo.endpoints import EndpointReport, scrape_all
from courier.demo.setup import LAKE_GROUP, DemoLayout, prepare_database, reset_kafka
from courier.demo.supervisor import Supervisor
from courier.devstack import stack
from courier.devstack.cli import bring_up
from courier.devstack.config import StackConfig
from courier.devstack.processes import StackError

# Not a terminal (CI, a log file): rich would assume 80 columns and fold the table.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 110)


def demo(
    events: Annotated[int, typer.Option("--events", "-n", help="Events to produce.")] = 2000,
    fail_rate: Annotated[
        float, typer.Option(help="Share of service-b calls that fail transiently (retried).")
    ] = 0.2,
    reject_rate: Annotated[
        float, typer.Option(help="Share of service-b events rejected (dead-lettered).")
    ] = 0.01,
    rate: Annotated[float, typer.Option(help="Production rate, events/s (0: flat out).")] = 0.0,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every event to be accounted for.")
    ] = 600.0,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", help="Leave the local stack running afterwards.")
    ] = False,
    hold: Annotated[
        bool,
        typer.Option(
            "--hold", help="Keep the services running after the reconciliation, until Ctrl-C."
        ),
    ] = False,
) -> None:
    """Produce events through Django and follow them to both consumers; reconcile at the end."""
    config = StackConfig.from_env()
    was_up = all(row.answering for row in stack.status(config))
    layout = DemoLayout.create(config)
    supervisor = Supervisor(layout.run_dir, layout.env(config), layout.repo)
    accountant: Accountant | None = None
    try:
        bring_up(config, with_connect=False)
        console.print(f"[bold]demo run[/bold] {layout.run_dir} (logs of every service there)")
        console.print(
            f"broker admin page: http://127.0.0.1:{layout.ports['broker-admin']}/ "
            f"(token for replays: {layout.admin_token})",
            highlight=False,
        )
        broker_config = layout.broker_config()
        with console.status("preparing the demo database and topics"):
            prepare_database(config, layout)
            reset_kafka(config, broker_config)
        _start_services(
            supervisor, layout, broker_config, fail_rate=fail_rate, reject_rate=reject_rate
        )
        producer = supervisor.python(
            "producer",
            "examples.producer.produce",
            "--events",
            str(events),
            "--ids-out",
            str(layout.ids_file),
            "--rate",
            str(rate),
        )
        accountant = Accountant(
            routes=routes_for(broker_config, layout.tables),
            ids_file=layout.ids_file,
            database_url=layout.database_url(config),
            bootstrap_servers=config.bootstrap_servers,
            broker_metrics_url=f"http://127.0.0.1:{layout.ports['broker-metrics']}/metrics",
            lake_dir=layout.lake_dir,
        )
        final = _follow(
            supervisor,
            accountant,
            producer_done=producer.process.poll,
            events=events,
            timeout=timeout,
        )
        console.line()
        console.print(_reconciliation(final))
        console.print(_endpoints(scrape_all(layout.ports)))
        if not final.complete or final.produced != events:
            console.print("[red]reconciliation failed: some events are missing[/red]")
            raise typer.Exit(1)
        console.print("[green]every produced event is accounted for[/green]")
        if hold:
            console.print("services keep running (curl the endpoints above); Ctrl-C stops them")
            while True:
                time.sleep(1.0)
                supervisor.check_alive(allow_exit={"producer"})
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted: stopping what the demo started")
        raise typer.Exit(130) from None
    finally:
        if accountant is not None:
            accountant.close()
        with console.status("stopping the demo's services"):
            supervisor.stop_all()
            if not was_up and not keep_stack:
                stack.down(config)


def _start_services(
    supervisor: Supervisor,
    layout: DemoLayout,
    broker_config: BrokerConfig,
    *,
    fail_rate: float,
    reject_rate: float,
) -> None:
    ports = layout.ports
    supervisor.python(
        "service-a",
        "examples.service_a.server",
        "--port",
        str(ports["service-a"]),
        "--metrics-port",
        str(ports["service-a-metrics"]),
        ports=(ports["service-a"], ports["service-a-metrics"]),
    )
    supervisor.python(
        "service-b",
        "examples.service_b.server",
        "--port",
        str(ports["service-b"]),
        "--metrics-port",
        str(ports["service-b-metrics"]),
        "--fail-rate",
        str(fail_rate),
        "--reject-rate",
        str(reject_rate),
        ports=(ports["service-b"], ports["service-b-metrics"]),
    )
    supervisor.courier(
        "relay",
        "relay",
        "run",
        "--slot",
        layout.slot,
        "--metrics-port",
        str(ports["relay-metrics"]),
        ports=(ports["relay-metrics"],),
    )
    supervisor.courier(
        "lake",
        "lake",
        "sink",
        "--out",
        str(layout.lake_dir),
        "--topics",
        ",".join(sorted({t for c in broker_config.consumers.values() for t in c.topics})),
        "--group",
        LAKE_GROUP,
        "--roll-seconds",
        "2",
        "--metrics-port",
        str(ports["lake-metrics"]),
        ports=(ports["lake-metrics"],),
    )
    supervisor.courier(
        "broker",
        "broker",
        "run",
        "--config",
        str(layout.broker_yaml),
        "--metrics-port",
        str(ports["broker-metrics"]),
        "--admin-port",
        str(ports["broker-admin"]),
        ports=(ports["broker-metrics"], ports["broker-admin"]),
        env={"COURIER_ADMIN_TOKEN": layout.admin_token},
    )


def _follow(
    supervisor: Supervisor,
    accountant: Accountant,
    *,
    producer_done: Callable[[], int | None],
    events: int,
    timeout: float,
) -> Snapshot:
    deadline: float | None = None
    snapshot = accountant.snapshot()
    with Live(_progress(snapshot, events), console=console, refresh_per_second=2) as live:
        while True:
            time.sleep(1.0)
            supervisor.check_alive(allow_exit={"producer"})
            snapshot = accountant.snapshot()
            live.update(_progress(snapshot, events))
            finished = producer_done() is not None
            if finished and deadline is None:
                deadline = time.monotonic() + timeout
            if finished and snapshot.produced >= events and snapshot.complete:
                return snapshot
            if deadline is not None and time.monotonic() > deadline:
                return snapshot


def _endpoints(reports: list[EndpointReport]) -> Table:
    table = Table(title="metrics endpoints: courier_* families, and how many are non-zero")
    for column in ("process", "endpoint", "families", "non-zero"):
        table.add_column(column, justify="right" if column in ("families", "non-zero") else "left")
    for report in reports:
        if report.error is not None:
            table.add_row(report.process, report.url, "[red]unreachable[/red]", report.error)
        else:
            table.add_row(
                report.process, report.url, str(report.families), str(len(report.nonzero_families))
            )
    return table


def _progress(snapshot: Snapshot, events: int) -> Table:
    table = Table(title=f"courier demo — {datetime.now():%H:%M:%S}")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_row("produced (committed in Django)", f"{snapshot.produced} / {events}")
    table.add_row("on Kafka", str(snapshot.on_kafka))
    for tally in snapshot.tallies:
        route = tally.route
        table.add_row(
            f"delivered to {route.consumer} {route.method}", f"{tally.delivered} / {tally.expected}"
        )
    table.add_row("retries (broker)", str(snapshot.retried))
    table.add_row("in DLQ", str(snapshot.dead_lettered))
    table.add_row("in the data lake (Parquet)", f"{snapshot.in_lake} / {snapshot.produced}")
    return table


def _reconciliation(snapshot: Snapshot) -> Table:
    table = Table(title="reconciliation: every produced event, per consumer method")
    for column in ("consumer", "method", "topic", "expected", "delivered", "in DLQ", "missing"):
        table.add_column(
            column,
            justify="right" if column in ("expected", "delivered", "in DLQ", "missing") else "left",
            no_wrap=True,
        )
    for tally in snapshot.tallies:
        route = tally.route
        style = "red" if tally.missing else "green"
        table.add_row(
            route.consumer,
            route.method,
            route.topic,
            str(tally.expected),
            str(tally.delivered),
            str(tally.dead_lettered),
            f"[{style}]{tally.missing}[/{style}]",
        )
    style = "red" if snapshot.lake_missing else "green"
    table.add_section()
    table.add_row(
        "lake sink",
        "Parquet",
        "all event topics",
        str(snapshot.produced),
        str(snapshot.in_lake),
        "",
        f"[{style}]{snapshot.lake_missing}[/{style}]",
    )
    return table


__all__ = ["demo"]
