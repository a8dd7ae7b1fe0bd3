"""SIGTERM and SIGINT wiring shared by the long-running commands (DESIGN.md contract 5).

Each of them (relay, broker, lake sink, the consumer kit's server) stops the same way: a
signal asks its loop to stop, the loop finishes what it holds within its grace period, and the
previous handlers come back when the command returns (tests run commands in-process).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_handlers(
    on_stop: Callable[[], None], logger: logging.Logger | None = None
) -> Callable[[], None]:
    """Call ``on_stop`` on SIGTERM or SIGINT from now on; returns the function that undoes it.

    Logs one ``stopping`` line (with the signal's name) on ``logger`` when given. Signal
    handlers can only be installed from the main thread; elsewhere this does nothing and the
    caller stops its loop some other way (an event it sets).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: FrameType | None) -> None:
        if logger is not None:
            logger.info("stopping", extra={"signal": signal.Signals(signum).name})
        on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextmanager
def stop_on_signals(
    on_stop: Callable[[], None], logger: logging.Logger | None = None
) -> Iterator[None]:
    """:func:`install_stop_handlers` for the duration of a ``with`` block.

    >>> stop = threading.Event()
    >>> with stop_on_signals(stop.set):
    ...     pass
    """
    restore = install_stop_handlers(on_stop, logger)
    try:
        yield
    finally:
        restore()
