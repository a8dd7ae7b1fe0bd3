"""The asyncio event loop, on its own thread, that makes every gRPC call of a broker process.

The Kafka consumers run on plain threads (confluent-kafka's synchronous API); they hand
batches of work to this loop with :meth:`DeliveryLoop.spawn` and get results back through
their own queues, so neither side ever blocks the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class DeliveryLoop:
    """An asyncio loop running on a daemon thread until :meth:`stop`."""

    def __init__(self, name: str = "courier-grpc") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> DeliveryLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop thread, soon (thread-safe)."""
        self._loop.call_soon_threadsafe(callback)

    def spawn(
        self,
        jobs: Iterable[tuple[Callable[[], Awaitable[T]], Callable[[asyncio.Task[T]], object]]],
        on_task: Callable[[int, asyncio.Task[T]], object] | None = None,
    ) -> None:
        """Start one task per ``(make_coroutine, done_callback)``, all in one loop wake-up.

        ``on_task(index, task)`` is called on the loop thread for each task created, so the
        caller can keep a handle to cancel it later.
        """
        batch = list(jobs)
        if not batch:
            return

        def start_all() -> None:
            for index, (make, done) in enumerate(batch):
                task: asyncio.Task[T] = self._loop.create_task(make())  # type: ignore[arg-type]
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(done)
                if on_task is not None:
                    on_task(index, task)

        self._loop.call_soon_threadsafe(start_all)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task still running, stop the loop, join its thread and close the loop
        (also when it never started: an unclosed loop fails noisily at interpreter exit)."""
        if not self._thread.is_alive():
            if not self._loop.is_closed():
                self._loop.close()
            return

        async def cancel_all() -> None:
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        try:
            self.run(cancel_all(), timeout=timeout + 1)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()
