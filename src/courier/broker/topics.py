"""``courier topics ensure``: create the distribution, retry and DLQ topics a config names.

Topics that already exist are left as they are (their partition count is reported, not
changed). Partitions and replication come from the flags, else the config's top-level
``topics:`` section, else 3 partitions and replication factor 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import typer
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from rich.console import Console
from rich.table import Table

from courier import settings
from courier.broker.config import BrokerConfig
from courier.broker.kafka_clients import (
    DEFAULT_TIMEOUT,
    KafkaUnavailable,
    admin_client,
    unreachable_message,
)

app = typer.Typer(help="Kafka topics of the broker config.", no_args_is_help=True)
topics_app = app  # the name the rest of the package imports it by
_out = Console()
_err = Console(stderr=True)

Status = Literal["created", "present", "failed"]


@dataclass(frozen=True)
class TopicOutcome:
    """What ``ensure`` did for one topic; ``roles`` are ``"<role> (<consumer>)"`` labels."""

    topic: str
    roles: tuple[str, ...]
    status: Status
    partitions: int | None
    detail: str = ""


class TopicsError(RuntimeError):
    """Some topics could not be created; ``outcomes`` says which and why."""

    def __init__(self, outcomes: list[TopicOutcome]) -> None:
        failed = [o for o in outcomes if o.status == "failed"]
        super().__init__("; ".join(f"{o.topic}: {o.detail}" for o in failed))
        self.outcomes = outcomes


def ensure_topics(
    admin: AdminClient,
    config: BrokerConfig,
    *,
    partitions: int | None = None,
    replication_factor: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[TopicOutcome]:
    """Create every topic of ``config`` that is missing; one outcome per topic, config order.

    Raises :class:`KafkaUnavailable` when Kafka does not answer within ``timeout`` and
    :class:`TopicsError` (carrying all outcomes) when a topic could not be created.
    """
    partitions = partitions or config.topics.partitions
    replication_factor = replication_factor or config.topics.replication_factor
    roles = {
        topic: tuple(f"{role} ({consumer})" for consumer, role in users)
        for topic, users in config.topic_roles().items()
    }
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable_message(exc, timeout)) from None
    present = {name: len(t.partitions) for name, t in metadata.topics.items()}
    missing = [t for t in roles if t not in present]
    outcomes: dict[str, TopicOutcome] = {
        t: TopicOutcome(t, roles[t], "present", present[t]) for t in roles if t in present
    }
    if missing:
        requests = [NewTopic(t, partitions, replication_factor) for t in missing]
        futures = admin.create_topics(requests, request_timeout=timeout, operation_timeout=timeout)
        for topic, future in futures.items():
            outcomes[topic] = _outcome(topic, roles[topic], future, partitions, timeout)
    ordered = [outcomes[t] for t in roles]
    if any(o.status == "failed" for o in ordered):
        raise TopicsError(ordered)
    return ordered


def _outcome(
    topic: str, roles: tuple[str, ...], future: object, partitions: int, timeout: float
) -> TopicOutcome:
    try:
        future.result(timeout=timeout + 5)  # type: ignore[attr-defined]
    except KafkaException as exc:
        error = exc.args[0]
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return TopicOutcome(topic, roles, "present", None, "created by someone else meanwhile")
        reason = error.str() if isinstance(error, KafkaError) else str(exc)
        return TopicOutcome(topic, roles, "failed", None, reason)
    except Exception as exc:  # a future that timed out: report it, keep the others
        return TopicOutcome(topic, roles, "failed", None, f"{type(exc).__name__}: {exc}")
    return TopicOutcome(topic, roles, "created", partitions)


def outcome_table(outcomes: list[TopicOutcome]) -> Table:
    """The outcomes as a table: topic, what uses it, status, partitions."""
    table = Table()
    for column in ("topic", "used as", "status", "partitions"):
        table.add_column(column, overflow="fold")
    style = {"created": "green", "present": "dim", "failed": "red"}
    for o in outcomes:
        status = f"[{style[o.status]}]{o.status}[/]"
        if o.detail and o.status != "failed":  # failures get their own line on stderr
            status += f" ({o.detail})"
        count = "" if o.partitions is None else str(o.partitions)
        table.add_row(o.topic, "\n".join(o.roles), status, count)
    return table


def _error(message: str) -> None:
    _err.print(message, markup=False, highlight=False, soft_wrap=True)


@app.command("ensure")
def ensure(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Broker YAML file.", show_default=False
    ),
    partitions: int = typer.Option(
        None, "--partitions", min=1, help="Partitions of new topics (default: config, else 3)."
    ),
    replication_factor: int = typer.Option(
        None,
        "--replication-factor",
        min=1,
        help="Replication of new topics (default: config, else 1).",
    ),
    bootstrap_servers: str = typer.Option(
        None, "--bootstrap-servers", help="Overrides $COURIER_BOOTSTRAP_SERVERS."
    ),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Seconds to wait for Kafka."),
) -> None:
    """Create the distribution, retry and DLQ topics of a broker config that are missing."""
    from courier.broker.cli import load_or_exit

    broker = load_or_exit(config)
    out = _out if _out.is_terminal else Console(width=200)
    servers = settings.bootstrap_servers(bootstrap_servers)
    admin = admin_client(servers)
    try:
        outcomes = ensure_topics(
            admin,
            broker,
            partitions=partitions,
            replication_factor=replication_factor,
            timeout=timeout,
        )
    except KafkaUnavailable as exc:
        _error(f"error: {servers}: {exc}")
        raise typer.Exit(1) from None
    except TopicsError as exc:
        out.print(outcome_table(exc.outcomes))
        for o in exc.outcomes:
            if o.status == "failed":
                _error(f"error: {o.topic}: {o.detail}")
        raise typer.Exit(1) from None
    out.print(outcome_table(outcomes))
    created = sum(o.status == "created" for o in outcomes)
    _out.print(
        f"{created} created, {len(outcomes) - created} already present",
        markup=False,
        highlight=False,
    )
