"""How a handler answers the broker when it cannot take an event, and the one table that decides.

The exception tree a handler sees::

    Exception
     +-- ConsumerError                  base of the two below
          +-- RetryLater                -> UNAVAILABLE: the broker retries (backoff, retry topic)
          +-- RejectEvent               -> INVALID_ARGUMENT (or FAILED_PRECONDITION):
               +-- MissingEventMetadata    dead-lettered at once, never retried
    google.protobuf.message.DecodeError -> INVALID_ARGUMENT (the payload is not the message)
    anything else                       -> INTERNAL (retried: most crashes are transient)

A handler that already chose a status itself (``context.abort`` or ``context.set_code`` before
raising) keeps it. :func:`status_for_exception` is the table; the server interceptors in
:mod:`courier.consumer.interceptors` and the :func:`map_errors` decorator apply it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

_MAX_DETAILS = 1000

RETRY_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}
)
REJECT_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION})


class ConsumerError(Exception):
    """Base of the exceptions a handler raises to choose what the broker does with an event."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str = "", *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class RetryLater(ConsumerError):
    """The event is fine but cannot be handled now (a dependency is down, a lock is held).

    Answered ``UNAVAILABLE`` (or ``RESOURCE_EXHAUSTED`` / ``ABORTED`` when given as ``code``):
    the broker retries in memory with backoff, then through the consumer's retry topic. Repeated
    ``UNAVAILABLE`` opens the broker's circuit breaker for this consumer, which pauses delivery.
    """

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str = "", *, code: grpc.StatusCode | None = None) -> None:
        if code is not None and code not in RETRY_CODES:
            raise ValueError(f"RetryLater takes one of {_names(RETRY_CODES)}, not {code.name}")
        super().__init__(message, code=code)


class RejectEvent(ConsumerError):
    """The event can never be handled (bad content, violates an invariant): dead-letter it now.

    Answered ``INVALID_ARGUMENT``, or ``FAILED_PRECONDITION`` when given as ``code``. The event
    lands in the consumer's DLQ with this message; ``courier dlq replay`` brings it back once
    the cause is fixed.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str = "", *, code: grpc.StatusCode | None = None) -> None:
        if code is not None and code not in REJECT_CODES:
            raise ValueError(f"RejectEvent takes one of {_names(REJECT_CODES)}, not {code.name}")
        super().__init__(message, code=code)


def status_for_exception(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and details a handler exception is answered with (the table above)."""
    if isinstance(exc, ConsumerError):
        code = exc.code
        details = str(exc) or type(exc).__name__
    elif isinstance(exc, DecodeError):
        code = grpc.StatusCode.INVALID_ARGUMENT
        details = f"cannot decode the event payload: {exc}" if str(exc) else "cannot decode payload"
    else:
        code = grpc.StatusCode.INTERNAL
        details = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if len(details) > _MAX_DETAILS:
        details = details[: _MAX_DETAILS - 3] + "..."
    return code, details


def status_already_chosen(exc: BaseException, context: Any) -> bool:
    """True when the handler picked its own status (``abort``/``set_code``): leave it alone."""
    if isinstance(exc, grpc.aio.AbortError):
        return True
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return False
    return code is not None and code != grpc.StatusCode.OK


F = TypeVar("F", bound=Callable[..., Any])


def map_errors(method: F) -> F:
    """Decorate one servicer method (sync or ``async def``) with the exception-to-status table.

    Servers built by :func:`courier.consumer.serve` already apply the table to every method
    through an interceptor; the decorator is for servicers mounted on a server you build::

        class EventsAPI(EventsAPIServicer):
            @map_errors
            def PackageDelivered(self, request, context):
                raise RetryLater("warehouse API is down")  # -> UNAVAILABLE
    """
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def async_wrapper(self: Any, request: Any, context: Any) -> Any:
            try:
                return await method(self, request, context)
            except Exception as exc:
                if status_already_chosen(exc, context):
                    raise
                code, details = status_for_exception(exc)
                await context.abort(code, details)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            if status_already_chosen(exc, context):
                raise
            code, details = status_for_exception(exc)
            context.abort(code, details)

    return wrapper  # type: ignore[return-value]


def _names(codes: frozenset[grpc.StatusCode]) -> str:
    return ", ".join(sorted(code.name for code in codes))
