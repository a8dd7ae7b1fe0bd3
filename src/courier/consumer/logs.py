"""Logs of a consumer service: JSON lines when stdout is not a terminal, one line per failure.

Each call that does not end OK (or ALREADY_EXISTS) logs one line carrying the event id, type,
source, attempt, method, status and details; never the payload.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import grpc

from courier.consumer.interceptors import HandledCall

logger = logging.getLogger("courier.consumer")

_SUCCESS = (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS)
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log to stdout, as JSON lines unless it is a terminal. Leaves an app's own setup alone."""
    root = logging.getLogger()
    if root.handlers:
        return
    out = stream or sys.stdout
    handler = logging.StreamHandler(out)
    if out.isatty():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonLineFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def log_call(call: HandledCall) -> None:
    """Observer for the interceptors: one warning line per call that does not end in success."""
    if call.code in _SUCCESS:
        return
    event = call.event
    fields: dict[str, Any] = {
        "method": call.method,
        "code": call.code.name,
        "details": call.details,
        "seconds": round(call.seconds, 6),
    }
    if event is not None:
        fields.update(
            event_id=event.id, event_type=event.type, source=event.source, attempt=event.attempt
        )
    logger.warning(
        "%s answered %s for event %s: %s",
        call.method,
        call.code.name,
        event.id if event else "?",
        call.details,
        extra=fields,
    )
