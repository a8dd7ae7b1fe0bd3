"""``courier dlq list | show | replay CONSUMER --config FILE``.

``list`` and ``show`` read the consumer's DLQ topic from the beginning to its current end
without joining a consumer group. ``replay`` sends matching events back to the retry topic
(see :mod:`courier.broker.dlq_replay`). Times (``--since``/``--until``) are RFC 3339
(``2026-01-02T15:04:05Z``), a date (``2026-01-02``, UTC midnight), or a duration meaning
"that long ago" (``30m``, ``2h``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from courier import settings
from courier.broker.config import ConsumerConfig, parse_duration
from courier.broker.dlq_records import DlqRecord, read_records
from courier.broker.dlq_replay import RecordFilter, ReplaySummary, replay, replay_group
from courier.broker.kafka_clients import DEFAULT_TIMEOUT, KafkaUnavailable, reader
from courier.broker.retry_headers import now_ms
from courier.events import format_time

app = typer.Typer(help="Inspect and replay a consumer's dead-letter topic.", no_args_is_help=True)
dlq_app = app  # the name the rest of the package imports it by
_out = Console()
_err = Console(stderr=True)

CONSUMER_ARG = typer.Argument(..., help="Consumer name from the broker config.", show_default=False)
CONFIG_OPTION = typer.Option(..., "--config", "-c", help="Broker YAML file.", show_default=False)
SERVERS_OPTION = typer.Option(
    None, "--bootstrap-servers", help="Overrides $COURIER_BOOTSTRAP_SERVERS."
)
TIMEOUT_OPTION = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Seconds to wait for Kafka.")
TYPE_OPTION = typer.Option([], "--type", help="Only this event type (repeatable).")
SINCE_OPTION = typer.Option(None, "--since", help="Dead-lettered at or after this time.")
UNTIL_OPTION = typer.Option(None, "--until", help="Dead-lettered before this time.")
ERROR_OPTION = typer.Option(
    None, "--error", help="Last error or status contains this (case-insensitive)."
)


def _error(message: str) -> None:
    _err.print(message, markup=False, highlight=False, soft_wrap=True)


def _wide() -> Console:
    return _out if _out.is_terminal else Console(width=200)


def _consumer(config: Path, name: str) -> ConsumerConfig:
    from courier.broker.cli import load_or_exit

    broker = load_or_exit(config)
    if name not in broker.consumers:
        _error(f"error: no consumer {name!r} in {config} (known: {', '.join(broker.consumers)})")
        raise typer.Exit(2)
    return broker.consumers[name]


def parse_when(text: str, now: datetime | None = None) -> int:
    """Epoch ms from RFC 3339, a date, or a duration ago; ValueError otherwise.

    >>> parse_when("2026-01-02")
    1767312000000
    """
    now = now or datetime.now(UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", text.strip()):
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int((now.timestamp() - parse_duration(text)) * 1000)


def _filter(
    event_ids: list[str], types: list[str], since: str | None, until: str | None, error: str | None
) -> RecordFilter:
    bounds: list[int | None] = []
    for flag, text in (("--since", since), ("--until", until)):
        try:
            bounds.append(None if text is None else parse_when(text))
        except ValueError:
            _error(f"error: {flag} {text!r}: expected RFC 3339, a date, or a duration like 2h")
            raise typer.Exit(2) from None
    return RecordFilter(frozenset(event_ids), frozenset(types), bounds[0], bounds[1], error)


def _records(consumer: ConsumerConfig, servers: str, timeout: float) -> Iterator[DlqRecord]:
    kafka = reader(servers, f"{consumer.group_id}.dlq-reader")  # never commits
    try:
        yield from read_records(kafka, consumer.dlq_topic, timeout=timeout)
    finally:
        kafka.close()


def _when(ms: int | None) -> str:
    return "" if ms is None else format_time(datetime.fromtimestamp(ms / 1000, tz=UTC))


def _one_line(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def record_table(records: list[DlqRecord], title: str) -> Table:
    """DLQ records as rows: position, event, origin, attempts, last failure, when."""
    table = Table(title=title)
    columns = ("dlq p:offset", "event id", "type", "from", "attempts", "status", "last error",
               "dead-lettered")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in records:
        s = r.state
        origin = (
            "" if s is None else f"{s.original_topic} {s.original_partition}:{s.original_offset}"
        )
        table.add_row(
            r.position,
            r.event_id or "?",
            r.event_type or "?",
            origin,
            "" if s is None else str(s.attempt),
            "?" if s is None else s.last_status,
            _one_line(s.last_error if s is not None else f"({r.state_problem})"),
            _when(r.dead_lettered_ms),
        )
    return table


def _record_json(r: DlqRecord) -> str:
    s = r.state
    return json.dumps(
        {
            "dlq_partition": r.partition,
            "dlq_offset": r.offset,
            "id": r.event_id,
            "type": r.event_type,
            "source": r.event_source,
            "original_topic": None if s is None else s.original_topic,
            "original_partition": None if s is None else s.original_partition,
            "original_offset": None if s is None else s.original_offset,
            "attempts": None if s is None else s.attempt,
            "failed_methods": None if s is None else list(s.failed_methods),
            "last_status": None if s is None else s.last_status,
            "last_error": None if s is None else s.last_error,
            "dead_lettered_at": _when(r.dead_lettered_ms) or None,
            "problem": r.state_problem,
        }
    )


@app.command("list")
def list_events(
    consumer: str = CONSUMER_ARG,
    config: Path = CONFIG_OPTION,
    types: list[str] = TYPE_OPTION,
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    error: str = ERROR_OPTION,
    limit: int = typer.Option(None, "--limit", min=1, help="Show at most this many."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    bootstrap_servers: str = SERVERS_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """List the events in a consumer's DLQ topic (oldest first, per partition)."""
    target = _consumer(config, consumer)
    selection = _filter([], types, since, until, error)
    servers = settings.bootstrap_servers(bootstrap_servers)
    shown: list[DlqRecord] = []
    total = 0
    try:
        for record in _records(target, servers, timeout):
            total += 1
            if selection.matches(record) and (limit is None or len(shown) < limit):
                shown.append(record)
                if as_json:
                    print(_record_json(record), flush=True)
    except KafkaUnavailable as exc:
        _error(f"error: {servers}: {exc}")
        raise typer.Exit(1) from None
    if not as_json:
        title = f"{target.dlq_topic}: {len(shown)} of {total} event(s)"
        _wide().print(record_table(shown, title) if shown else title, markup=False)


@app.command("show")
def show(
    consumer: str = CONSUMER_ARG,
    event_id: str = typer.Argument(..., help="The event's id (ce_id).", show_default=False),
    config: Path = CONFIG_OPTION,
    bootstrap_servers: str = SERVERS_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """Everything about one event in the DLQ: headers, failure, payload size. Exit 1 if absent."""
    target = _consumer(config, consumer)
    servers = settings.bootstrap_servers(bootstrap_servers)
    try:
        found = [r for r in _records(target, servers, timeout) if r.event_id == event_id]
    except KafkaUnavailable as exc:
        _error(f"error: {servers}: {exc}")
        raise typer.Exit(1) from None
    if not found:
        _error(f"error: no event {event_id!r} in {target.dlq_topic}")
        raise typer.Exit(1)
    out = _wide()
    for record in found:
        out.print(_details(record), markup=False, highlight=False)


def _details(r: DlqRecord) -> str:
    s = r.state
    lines = [
        f"event {r.event_id}  (DLQ {r.topic} {r.position})",
        f"  type            {r.event_type}",
        f"  source          {r.event_source}",
        f"  time            {r.header('ce_time')}",
        f"  key             {r.key.decode('utf-8', 'replace') if r.key is not None else '(none)'}",
        f"  payload         {len(r.value or b'')} bytes: {(r.value or b'')[:48].hex()}"
        + ("…" if len(r.value or b"") > 48 else ""),
    ]
    if s is None:
        lines.append(f"  retry headers   {r.state_problem}")
    else:
        lines += [
            f"  consumer        {s.consumer}",
            f"  from            {s.original_topic} partition {s.original_partition} "
            f"offset {s.original_offset}",
            f"  attempts        {s.attempt} through the retry topic",
            f"  failed methods  {', '.join(s.failed_methods) or '(none)'}",
            f"  last status     {s.last_status}",
            f"  dead-lettered   {_when(r.dead_lettered_ms)}",
            f"  last error      {s.last_error}",
        ]
    lines.append("  headers")
    lines += [
        f"    {name}: {'' if value is None else value.decode('utf-8', 'replace')}"
        for name, value in r.headers
    ]
    return "\n".join(lines)


@app.command("replay")
def replay_events(
    consumer: str = CONSUMER_ARG,
    config: Path = CONFIG_OPTION,
    event_ids: list[str] = typer.Option([], "--event-id", help="Only this event (repeatable)."),
    types: list[str] = TYPE_OPTION,
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    error: str = ERROR_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be replayed; send nothing."
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Replay at most this many."),
    rate: float = typer.Option(
        None, "--rate", min=0.001, help="At most this many events per second."
    ),
    from_beginning: bool = typer.Option(
        False, "--from-beginning", help="Also replay events that an earlier replay sent."
    ),
    bootstrap_servers: str = SERVERS_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """Send matching DLQ events back to the consumer's retry topic with a fresh attempt count.

    The DLQ keeps them (Kafka cannot delete single records); the replay is recorded in the
    group courier.<consumer>.dlq-replay so that the next replay skips them.
    """
    target = _consumer(config, consumer)
    selection = _filter(event_ids, types, since, until, error)
    servers = settings.bootstrap_servers(bootstrap_servers)
    try:
        summary = replay(target, servers, selection, dry_run=dry_run, limit=limit, rate=rate,
                         from_beginning=from_beginning, timeout=timeout)  # fmt: skip
    except KafkaUnavailable as exc:
        _error(f"error: {servers}: {exc}")
        raise typer.Exit(1) from None
    out = _wide()
    if dry_run and summary.matched:
        out.print(record_table(summary.matched, f"would replay to {target.retry_topic}"))
    for record, reason in summary.failed:
        _error(f"error: {record.position} ({record.event_id}): not acknowledged: {reason}")
    for record in summary.unreplayable:
        _error(f"skipped {record.position} ({record.event_id}): {record.state_problem}")
    out.print(_summary_line(summary, target, now_ms()), markup=False, highlight=False)
    if summary.failed:
        raise typer.Exit(1)


def _summary_line(summary: ReplaySummary, target: ConsumerConfig, _now: int) -> str:
    matched = len(summary.matched) + len(summary.unreplayable)
    verb = "would replay" if summary.dry_run else "replayed"
    count = len(summary.matched) if summary.dry_run else summary.replayed
    parts = [
        f"{target.dlq_topic} -> {target.retry_topic}:",
        f"scanned {summary.scanned}, matched {matched}, {verb} {count}, skipped {summary.skipped}",
        f"(already replayed {summary.already_replayed}, not matching {summary.not_matching})",
    ]
    line = " ".join(parts)
    if summary.limit_reached:
        line += "; stopped at --limit"
    if summary.ledger_truncated:
        line += f"; warning: {replay_group(target)} could not record every replayed offset"
    return line
