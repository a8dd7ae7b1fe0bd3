"""A real gRPC server for broker tests: raw-bytes handlers that record every call.

Each method answers what ``behaviour(call)`` says (default: OK). Services listed in the
descriptor pool (the generated ``packages.v1`` ones) are also offered through server
reflection, so bare method names in a broker config resolve against it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field, replace

import grpc
from grpc_reflection.v1alpha import reflection


@dataclass(frozen=True)
class Call:
    """One call the server received."""

    method: str  # full path, /pkg.Service/Method
    metadata: dict[str, str]
    payload: bytes
    at: float = field(default_factory=time.monotonic)
    code: grpc.StatusCode = grpc.StatusCode.OK

    @property
    def event_id(self) -> str:
        return self.metadata.get("ce-id", "")

    @property
    def attempt(self) -> int:
        return int(self.metadata.get("courier-attempt", "0"))


Answer = grpc.StatusCode | tuple[grpc.StatusCode, str] | None
Behaviour = Callable[[Call], Answer]


def ok(_call: Call) -> Answer:
    return None


class RecordingServer:
    """A gRPC server on a free loopback port serving ``services`` (name -> method names)."""

    def __init__(
        self,
        services: dict[str, Iterable[str]],
        *,
        reflect: bool = True,
        workers: int = 16,
        delay: float = 0.0,
        port: int = 0,
    ) -> None:
        self.services = {name: list(methods) for name, methods in services.items()}
        self.behaviour: Behaviour = ok
        self.delay = delay
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers), options=[("grpc.so_reuseport", 0)]
        )
        for service, methods in self.services.items():
            handlers = {m: self._handler(f"/{service}/{m}") for m in methods}
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )
        if reflect:
            reflection.enable_server_reflection(
                [*self.services, reflection.SERVICE_NAME], self._server
            )
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    def _handler(self, path: str) -> grpc.RpcMethodHandler:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            call = Call(path, {k: str(v) for k, v in context.invocation_metadata()}, request)
            if self.delay:
                time.sleep(self.delay)
            answer = self.behaviour(call)
            code, details = grpc.StatusCode.OK, ""
            if answer is not None:
                code, details = answer if isinstance(answer, tuple) else (answer, "scripted")
            with self._lock:
                self.calls.append(replace(call, code=code))
            if code is not grpc.StatusCode.OK:
                context.set_code(code)
                context.set_details(details)
            return b""

        return grpc.unary_unary_rpc_method_handler(handle)

    def start(self) -> RecordingServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received -------------------------------------------------------------------

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def calls_to(self, method: str) -> list[Call]:
        """Calls whose path ends with ``method`` (``"EndpointA"`` or a full path)."""
        return [c for c in self.snapshot() if c.method.endswith(method)]

    def delivered(self, method: str) -> Counter[str]:
        """Event id -> number of OK answers from ``method``."""
        return Counter(c.event_id for c in self.calls_to(method) if c.code is grpc.StatusCode.OK)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``predicate`` until true; AssertionError naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.05)
