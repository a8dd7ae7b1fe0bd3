"""Logs of a consumer service: one line per call that does not end in success.

The format (JSON lines or text) is set up by :mod:`courier.observability.logging`. Each call
that does not end OK (or ALREADY_EXISTS) logs one line carrying the event id, type, source,
attempt, method, status and details; never the payload.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from courier.consumer.interceptors import HandledCall

logger = logging.getLogger("courier.consumer")

_SUCCESS = (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS)


def log_call(call: HandledCall) -> None:
    """Observer for the interceptors: one warning line per call that does not end in success."""
    if call.code in _SUCCESS:
        return
    event = call.event
    fields: dict[str, Any] = {
        "method": call.method,
        "status": call.code.name,
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
