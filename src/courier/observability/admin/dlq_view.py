"""A consumer's DLQ as the admin page shows it, and replays asked for from the page.

Reading uses the same throwaway reader as ``courier dlq list``
(:func:`courier.broker.dlq_records.read_records`: partitions assigned, never subscribed, nothing
committed), starting ``limit`` records before each partition's end so a large DLQ costs no
more than the page shows. Whether a record was replayed already comes from the replay
ledger (:mod:`courier.broker.dlq_ledger`), read with ``committed()`` only.

Replays go through :func:`courier.broker.dlq_replay.replay`, the code behind
``courier dlq replay``, with two more criteria (DLQ positions, exact last statuses).

Payloads are decoded to JSON only for message types already in the process's descriptor
pool (the generated code of ``gen/python`` and ``courier.v1``, loaded once): ``ce_type`` is an
attacker-controlled header, so it is never used to import anything.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from courier.broker.config import ConsumerConfig
from courier.broker.dlq_records import DlqRecord, read_records
from courier.broker.dlq_replay import RecordFilter, read_ledgers, replay, replay_group
from courier.broker.kafka_clients import (
    DEFAULT_TIMEOUT,
    reader,
    watermarks,
)
from courier.events import format_time
from courier.lake.decode import PayloadDecoder

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_PAYLOAD_HEX_BYTES = 256
_MAX_CRITERIA = 1000
_POSITION = re.compile(r"^(\d{1,6}):(\d{1,19})$")


class BadRequest(ValueError):
    """The request's parameters are not acceptable (HTTP 400); the message says why."""


@dataclass(frozen=True)
class AdminFilter(RecordFilter):
    """:class:`RecordFilter` plus DLQ positions (``(partition, offset)``) and exact statuses."""

    positions: frozenset[tuple[int, int]] = frozenset()
    statuses: frozenset[str] = frozenset()

    def matches(self, record: DlqRecord) -> bool:
        """True if ``record`` passes every criterion set (AND)."""
        if self.positions and (record.partition, record.offset) not in self.positions:
            return False
        if self.statuses:
            status = None if record.state is None else record.state.last_status
            if status not in self.statuses:
                return False
        return super().matches(record)

    @property
    def empty(self) -> bool:
        """No criterion set: it matches every record."""
        bounds = self.since_ms is not None or self.until_ms is not None
        return not (
            self.positions or self.statuses or self.event_ids or self.types or self.error or bounds
        )


@dataclass(frozen=True)
class ReplayRequest:
    """A replay asked for by the page: a selection, a dry run or not, and a limit."""

    selection: AdminFilter
    dry_run: bool
    include_replayed: bool
    limit: int | None

    @classmethod
    def from_json(cls, body: Any) -> ReplayRequest:
        """Parse the POST body; BadRequest naming the field when it is wrong.

        ``positions`` (``"partition:offset"``), ``event_ids``, ``types``, ``statuses``: lists
        of strings; ``error``: a substring of the last status or error; ``all``: true to
        select every record (an empty selection is refused otherwise); ``dry_run``,
        ``include_replayed``: booleans; ``limit``: a positive integer.
        """
        if not isinstance(body, Mapping):
            raise BadRequest("the body must be a JSON object")
        known = {"positions", "event_ids", "types", "statuses", "error", "all", "dry_run",
                 "include_replayed", "limit"}  # fmt: skip
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(map(str, unknown))}")
        positions = set()
        for text in _strings(body, "positions"):
            match = _POSITION.match(text)
            if match is None:
                raise BadRequest(f"positions: {text!r} is not partition:offset")
            positions.add((int(match[1]), int(match[2])))
        error = body.get("error")
        if error is not None and not isinstance(error, str):
            raise BadRequest("error: must be a string")
        selection = AdminFilter(
            event_ids=frozenset(_strings(body, "event_ids")),
            types=frozenset(_strings(body, "types")),
            error=error or None,
            positions=frozenset(positions),
            statuses=frozenset(s.upper() for s in _strings(body, "statuses")),
        )
        if selection.empty and body.get("all") is not True:
            raise BadRequest('nothing selected: give positions, event_ids, types, statuses, '
                             'error, or "all": true')  # fmt: skip
        limit = body.get("limit")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise BadRequest("limit: must be a positive integer")
        return cls(
            selection=selection,
            dry_run=_flag(body, "dry_run"),
            include_replayed=_flag(body, "include_replayed"),
            limit=limit,
        )


def _strings(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{name}: must be a list of strings")
    if len(value) > _MAX_CRITERIA:
        raise BadRequest(f"{name}: at most {_MAX_CRITERIA} entries")
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name}: must be true or false")
    return value


@lru_cache(maxsize=1)
def known_types_decoder() -> PayloadDecoder:
    """A decoder for the message types of the generated code, loaded once, and nothing else."""
    from google.protobuf import descriptor_pool

    from courier.schemas import import_generated_modules

    # Installed without the checkout's gen/python: fewer known types, not an error.
    with contextlib.suppress(ImportError):
        import_generated_modules()
    return PayloadDecoder.for_pool(descriptor_pool.Default())


def _when(ms: int | None) -> str | None:
    return None if ms is None else format_time(datetime.fromtimestamp(ms / 1000, tz=UTC))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def record_json(record: DlqRecord, decoder: PayloadDecoder, replayed: bool) -> dict[str, Any]:
    """One DLQ record for the page: position, event, bookkeeping, headers, decoded payload."""
    s = record.state
    value = record.value or b""
    decoded = decoder.decode(record.event_type, record.value)
    payload: dict[str, Any] = {
        "size": len(value),
        "json": None if decoded.json is None else json.loads(decoded.json),
        "error": decoded.error,
        "hex": value[:_PAYLOAD_HEX_BYTES].hex(),
        "truncated": len(value) > _PAYLOAD_HEX_BYTES,
    }
    return {
        "position": record.position,
        "partition": record.partition,
        "offset": record.offset,
        "id": record.event_id,
        "type": record.event_type,
        "source": record.event_source,
        "time": record.header("ce_time"),
        "key": _text(record.key),
        "attempt": None if s is None else s.attempt,
        "failed_methods": [] if s is None else list(s.failed_methods),
        "last_status": None if s is None else s.last_status,
        "last_error": None if s is None else s.last_error,
        "original_topic": None if s is None else s.original_topic,
        "original_partition": None if s is None else s.original_partition,
        "original_offset": None if s is None else s.original_offset,
        "dead_lettered_at": _when(record.dead_lettered_ms),
        "problem": record.state_problem,
        "replayed": replayed,
        "headers": [[name, _text(v)] for name, v in record.headers],
        "payload": payload,
    }


def read_dlq(
    consumer: ConsumerConfig,
    bootstrap_servers: str,
    *,
    selection: RecordFilter | None = None,
    limit: int = DEFAULT_LIMIT,
    decoder: PayloadDecoder | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The newest ``limit`` records of each DLQ partition that match, newest first overall
    (at most ``limit`` in all), with the DLQ's total size. KafkaUnavailable if Kafka fails."""
    decoder = decoder or known_types_decoder()
    kafka = reader(bootstrap_servers, replay_group(consumer))  # committed() only; no commits
    try:
        ledgers = read_ledgers(kafka, consumer.dlq_topic, timeout)
        start: dict[int, int] = {}
        total = 0
        for partition in ledgers:
            low, high = watermarks(kafka, consumer.dlq_topic, partition, timeout)
            total += max(0, high - low)
            start[partition] = max(low, high - limit)
        records = list(read_records(kafka, consumer.dlq_topic, start, timeout))
    finally:
        kafka.close()
    matching = [r for r in records if selection is None or selection.matches(r)]
    matching.sort(key=lambda r: (r.dead_lettered_ms or 0, r.partition, r.offset), reverse=True)
    shown = matching[:limit]
    return {
        "consumer": consumer.name,
        "topic": consumer.dlq_topic,
        "retry_topic": consumer.retry_topic,
        "total": total,
        "scanned": len(records),
        "events": [
            record_json(r, decoder, r.partition in ledgers and r.offset in ledgers[r.partition])
            for r in shown
        ],
    }


def replay_request(
    consumer: ConsumerConfig,
    bootstrap_servers: str,
    request: ReplayRequest,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Run (or dry-run) ``request`` through ``courier dlq replay``'s code; a JSON summary.

    Records picked by position are an operator's explicit choice: they are sent even if an
    earlier replay sent them (``include_replayed`` does the same for the other criteria).
    """
    from_beginning = request.include_replayed or bool(request.selection.positions)
    summary = replay(consumer, bootstrap_servers, request.selection, dry_run=request.dry_run,
                     limit=request.limit, from_beginning=from_beginning,
                     timeout=timeout)  # fmt: skip
    return {
        "consumer": consumer.name,
        "dlq_topic": consumer.dlq_topic,
        "retry_topic": consumer.retry_topic,
        "dry_run": summary.dry_run,
        "scanned": summary.scanned,
        "matched": len(summary.matched) + len(summary.unreplayable),
        "replayed": summary.replayed,
        "already_replayed": summary.already_replayed,
        "not_matching": summary.not_matching,
        "limit_reached": summary.limit_reached,
        "events": _briefs(summary.matched),
        "unreplayable": [
            {**b, "problem": r.state_problem}
            for b, r in zip(_briefs(summary.unreplayable), summary.unreplayable, strict=True)
        ],
        "failed": [{**_briefs([r])[0], "error": why} for r, why in summary.failed],
    }


def _briefs(records: Iterable[DlqRecord]) -> list[dict[str, Any]]:
    return [
        {
            "position": r.position,
            "id": r.event_id,
            "type": r.event_type,
            "last_status": None if r.state is None else r.state.last_status,
        }
        for r in records
    ]
