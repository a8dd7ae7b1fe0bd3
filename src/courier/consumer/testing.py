"""Deliver an event to a servicer exactly as the broker would, in a unit test, without Kafka.

::

    from courier.consumer.testing import deliver

    def test_package_delivered_is_recorded():
        result = deliver(EventsAPI(), "PackageDelivered", PackageDelivered(package=...))
        assert result.code is grpc.StatusCode.OK

The servicer is mounted on a real gRPC server on a free loopback port, built by the same code
as production (:func:`courier.consumer.server.build_server`, same interceptors), and called
with the serialized bytes and the broker's metadata (``ce-id``, ``ce-type``, ``ce-source``,
``ce-time``, ``courier-attempt``, ``traceparent``). Redeliver by passing the same
``event_id`` with a higher ``attempt``. ``async def`` servicers run on a ``grpc.aio`` server.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from courier.consumer import aio
from courier.consumer.metadata import EventMetadata
from courier.consumer.server import ServicerLike, build_server, registration_for
from courier.events import uuid7

_SUCCESS = (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS)


@dataclass(frozen=True)
class DeliveryResult:
    """What the consumer answered: the status code the broker acts on, and the response."""

    code: grpc.StatusCode
    details: str
    response: Message | None  # decoded when the method's response type is in the descriptor pool
    response_bytes: bytes | None
    event: EventMetadata

    @property
    def ok(self) -> bool:
        """True when the broker would commit (OK or ALREADY_EXISTS)."""
        return self.code in _SUCCESS


class InProcessConsumer:
    """A running consumer server in this process, and a channel to it."""

    def __init__(self, address: str, methods: dict[str, tuple[str, ...]]) -> None:
        self.address = address
        self.methods = methods
        self._channel = grpc.insecure_channel(address)

    def deliver(
        self,
        method: str,
        message: Message | bytes,
        *,
        event_id: str | None = None,
        type: str | None = None,  # the CloudEvents attribute name
        source: str = "courier-test",
        time: datetime | None = None,
        attempt: int = 1,
        traceparent: str | None = None,
        tracestate: str | None = None,
        timeout: float = 10.0,
    ) -> DeliveryResult:
        """Deliver one event to ``method`` (``Method``, ``pkg.Service/Method`` or a full path)."""
        path = resolve_method(method, self.methods)
        payload = message if isinstance(message, bytes) else message.SerializeToString()
        event = EventMetadata(
            id=event_id or str(uuid7()),
            type=type or _event_type(message, path),
            source=source,
            time=time or datetime.now(UTC),
            attempt=attempt,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        # No serializers: bytes in, bytes out, as the broker forwards them.
        call = self._channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        try:
            raw, rpc = call.with_call(payload, metadata=event.grpc_metadata(), timeout=timeout)
        except grpc.RpcError as exc:
            return DeliveryResult(exc.code(), exc.details() or "", None, None, event)
        return DeliveryResult(
            rpc.code(), rpc.details() or "", _decode_response(path, raw), raw, event
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


@contextmanager
def running(*servicers: ServicerLike) -> Iterator[InProcessConsumer]:
    """Run ``servicers`` on a production-built server on a free port while the block runs::

    with running(EventsAPI()) as consumer:
        first = consumer.deliver("EndpointA", msg, event_id="e1")
        again = consumer.deliver("EndpointA", msg, event_id="e1", attempt=2)
    """
    if any(_is_async_servicer(s) for s in servicers):
        with _aio_server_thread(servicers) as (address, methods):
            consumer = InProcessConsumer(address, methods)
            try:
                yield consumer
            finally:
                consumer.close()
        return
    server = build_server(*servicers, port=0, max_workers=4).start()
    consumer = InProcessConsumer(server.address, server.methods)
    try:
        yield consumer
    finally:
        consumer.close()
        server.stop(grace=1.0)


def deliver(
    target: ServicerLike | Sequence[ServicerLike] | InProcessConsumer | str,
    method: str,
    message: Message | bytes,
    **options: Any,
) -> DeliveryResult:
    """Deliver one event as the broker would, and return the consumer's answer.

    ``target`` is a servicer (or a list of them; a server is started for this one call), a
    :class:`InProcessConsumer` from :func:`running`, or a ``host:port`` already serving.
    ``options`` are those of :meth:`InProcessConsumer.deliver` (``event_id``, ``type``,
    ``source``, ``time``, ``attempt``, ``traceparent``, ``tracestate``, ``timeout``).
    """
    if isinstance(target, InProcessConsumer):
        return target.deliver(method, message, **options)
    if isinstance(target, str):
        consumer = InProcessConsumer(target, {})
        try:
            return consumer.deliver(method, message, **options)
        finally:
            consumer.close()
    servicers = list(target) if isinstance(target, list) else [target]
    with running(*servicers) as consumer:
        return consumer.deliver(method, message, **options)


def resolve_method(method: str, methods: dict[str, tuple[str, ...]]) -> str:
    """``/pkg.Service/Method`` for a full path, ``pkg.Service/Method`` or a bare, unique name."""
    if method.startswith("/"):
        return method
    if "/" in method:
        return "/" + method
    owners = [service for service, names in methods.items() if method in names]
    if len(owners) == 1:
        return f"/{owners[0]}/{method}"
    if not owners:
        known = ", ".join(f"{s}/{m}" for s, names in methods.items() for m in names) or "none"
        raise ValueError(f"no method {method!r} on the servicers (methods: {known})")
    raise ValueError(f"method {method!r} is ambiguous: {', '.join(owners)}; give Service/Method")


def _method_descriptor(path: str) -> Any:
    service, _, name = path.lstrip("/").partition("/")
    try:
        return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    except KeyError:
        return None


def _event_type(message: Message | bytes, path: str) -> str:
    if isinstance(message, Message):
        return str(message.DESCRIPTOR.full_name)
    method = _method_descriptor(path)
    if method is None:
        raise ValueError(f"cannot tell the event type of raw bytes for {path}; pass type=")
    return str(method.input_type.full_name)


def _decode_response(path: str, raw: bytes | None) -> Message | None:
    method = _method_descriptor(path)
    if method is None or raw is None:
        return None
    response: Message = message_factory.GetMessageClass(method.output_type).FromString(raw)
    return response


def _is_async_servicer(servicer: ServicerLike) -> bool:
    instance = registration_for(servicer).servicer
    return any(
        inspect.iscoroutinefunction(getattr(instance, name, None))
        for name in dir(type(instance))
        if not name.startswith("_")
    )


@contextmanager
def _aio_server_thread(
    servicers: Sequence[ServicerLike],
) -> Iterator[tuple[str, dict[str, tuple[str, ...]]]]:
    """Run an asyncio consumer server on a loop of its own, in a daemon thread."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        try:
            server = aio.build_server(*servicers, port=0)
            await server.start()
        except BaseException as exc:
            state["error"] = exc
            started.set()
            raise
        stop = asyncio.Event()
        state.update(server=server, stop=stop, loop=asyncio.get_running_loop())
        started.set()
        await stop.wait()
        await server.stop(grace=1.0)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    started.wait(timeout=30)
    if "error" in state:
        raise state["error"]
    server = state["server"]
    try:
        yield server.address, server.methods
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=10)
