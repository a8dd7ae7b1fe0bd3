"""The one table that decides what a gRPC status means for an event (DESIGN.md contract 4).

=============================================================  ==================
status                                                         action
=============================================================  ==================
OK, ALREADY_EXISTS                                             COMMIT
UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,   RETRY
INTERNAL, UNKNOWN
INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND,              DEAD_LETTER
UNIMPLEMENTED, anything else
=============================================================  ==================

The consumer's status code is its only way to talk back; every other module asks
:func:`action_for` and never looks at a status code itself.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

import grpc


class Action(enum.Enum):
    """What the broker does with an event after one call to one method."""

    COMMIT = "commit"
    """Delivered (or already delivered): the method is done with this event."""
    RETRY = "retry"
    """Transient failure: retry in memory, then through the consumer's retry topic."""
    DEAD_LETTER = "dead_letter"
    """The event can never be handled by this method: straight to the consumer's DLQ."""


_C = grpc.StatusCode

STATUS_ACTIONS: MappingProxyType[grpc.StatusCode, Action] = MappingProxyType(
    {
        _C.OK: Action.COMMIT,
        _C.ALREADY_EXISTS: Action.COMMIT,
        _C.UNAVAILABLE: Action.RETRY,
        _C.DEADLINE_EXCEEDED: Action.RETRY,
        _C.RESOURCE_EXHAUSTED: Action.RETRY,
        _C.ABORTED: Action.RETRY,
        _C.INTERNAL: Action.RETRY,
        _C.UNKNOWN: Action.RETRY,
    }
)
"""Every status not listed here (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND,
UNIMPLEMENTED, CANCELLED, PERMISSION_DENIED, ...) dead-letters at once."""


def action_for(code: grpc.StatusCode) -> Action:
    """The action for a status code: the table above, DEAD_LETTER for anything unlisted.

    >>> action_for(grpc.StatusCode.UNAVAILABLE)
    <Action.RETRY: 'retry'>
    """
    return STATUS_ACTIONS.get(code, Action.DEAD_LETTER)
