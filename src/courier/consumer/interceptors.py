"""Server interceptors that put every delivery through the same door, sync or asyncio.

For each unary method of the team's services (gRPC's own health and reflection services are
left alone) the interceptor:

- decodes the request itself, so a payload that is not the method's message is answered
  ``INVALID_ARGUMENT`` (dead-lettered) instead of grpc's generic retried error;
- maps handler exceptions to status codes with :func:`courier.consumer.errors.status_for_exception`;
- reports each finished call as a :class:`HandledCall` to its observers (metrics, logs);
- with tracing on, runs the handler in a SERVER span continuing the call's ``traceparent``
  (:func:`courier.observability.tracing.start_handler_span`).

It works for plain generated servicers: nothing in the handler needs to know about it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from courier.consumer.errors import status_already_chosen, status_for_exception
from courier.consumer.metadata import EventMetadata, MissingEventMetadata
from courier.observability.tracing import HandlerSpan, start_handler_span

_GRPC_OWN_SERVICES = "/grpc."


@dataclass(frozen=True)
class HandledCall:
    """One finished call to a consumer method, as observers see it."""

    method: str  # "/package.Service/Method"
    code: grpc.StatusCode
    details: str
    seconds: float
    invocation_metadata: tuple[Any, ...]

    @property
    def event(self) -> EventMetadata | None:
        """The call's event metadata, or None when the call did not carry it."""
        try:
            return EventMetadata.from_grpc_metadata(self.invocation_metadata)
        except MissingEventMetadata:
            return None


Observer = Callable[[HandledCall], None]


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc,type-arg]
    """For ``grpc.server(...)``: decode, map exceptions to status codes, report to observers."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._observers = tuple(observers)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if not _is_courier_delivery(handler, handler_call_details):
            return handler
        assert handler is not None
        return _wrap_sync(handler, handler_call_details, self._observers)


class AsyncErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc,type-arg]
    """For ``grpc.aio.server(...)``: the same as :class:`ErrorMappingInterceptor`.

    Sync handlers mounted on an asyncio server run in a worker thread, so they get the same
    mapping as ``async def`` ones.
    """

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._observers = tuple(observers)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if not _is_courier_delivery(handler, handler_call_details):
            return handler
        return _wrap_async(handler, handler_call_details, self._observers)


def _is_courier_delivery(
    handler: grpc.RpcMethodHandler[Any, Any] | None, details: grpc.HandlerCallDetails
) -> bool:
    return (
        handler is not None
        and handler.unary_unary is not None
        and not handler.request_streaming
        and not handler.response_streaming
        and not str(details.method).startswith(_GRPC_OWN_SERVICES)
    )


class _Outcome:
    """Status of the call being handled, filled in as it finishes."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK
        self.details = ""

    def from_context(self, context: Any) -> None:
        code = context.code()
        if code is not None:
            self.code = code
        details = context.details()
        if details:
            self.details = details.decode() if isinstance(details, bytes) else str(details)


def _notify(
    observers: Sequence[Observer],
    details: grpc.HandlerCallDetails,
    outcome: _Outcome,
    started: float,
    span: HandlerSpan | None = None,
) -> None:
    call = HandledCall(
        method=str(details.method),
        code=outcome.code,
        details=outcome.details,
        seconds=time.perf_counter() - started,
        invocation_metadata=tuple(details.invocation_metadata or ()),
    )
    try:
        for observe in observers:
            observe(call)
    finally:
        if span is not None:  # ended after the observers: their logs carry the trace id
            span.end(outcome.code.name, outcome.code.value[0], outcome.details)


def _wrap_sync(
    handler: grpc.RpcMethodHandler[Any, Any],
    details: grpc.HandlerCallDetails,
    observers: Sequence[Observer],
) -> grpc.RpcMethodHandler[Any, Any]:
    behavior = handler.unary_unary
    deserialize = handler.request_deserializer
    assert behavior is not None

    def handle(raw: bytes, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        outcome = _Outcome()
        span = start_handler_span(str(details.method), details.invocation_metadata)
        try:
            request = deserialize(raw) if deserialize is not None else raw
            response = behavior(request, context)
            outcome.from_context(context)
            return response
        except Exception as exc:
            if span is not None:
                span.failed(exc)
            if status_already_chosen(exc, context):
                outcome.from_context(context)
                raise
            outcome.code, outcome.details = status_for_exception(exc)
            context.abort(outcome.code, outcome.details)
        finally:
            _notify(observers, details, outcome, started, span)

    # request_deserializer=None: the raw bytes reach `handle`, which decodes them itself.
    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _wrap_async(
    handler: grpc.RpcMethodHandler[Any, Any],
    details: grpc.HandlerCallDetails,
    observers: Sequence[Observer],
) -> grpc.RpcMethodHandler[Any, Any]:
    behavior: Any = handler.unary_unary
    deserialize = handler.request_deserializer
    is_async = inspect.iscoroutinefunction(behavior)

    async def handle(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        outcome = _Outcome()
        span = start_handler_span(str(details.method), details.invocation_metadata)
        try:
            request = deserialize(raw) if deserialize is not None else raw
            if is_async:
                response = await behavior(request, context)
            else:
                response = await asyncio.to_thread(behavior, request, context)
            outcome.from_context(context)
            return response
        except Exception as exc:
            if span is not None:
                span.failed(exc)
            if status_already_chosen(exc, context):
                outcome.from_context(context)
                raise
            outcome.code, outcome.details = status_for_exception(exc)
            await context.abort(outcome.code, outcome.details)
        finally:
            _notify(observers, details, outcome, started, span)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=None, response_serializer=handler.response_serializer
    )
