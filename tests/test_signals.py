"""The SIGTERM/SIGINT wiring shared by the long-running commands."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from courier._signals import install_stop_handlers, stop_on_signals


def test_sigterm_calls_on_stop_and_the_old_handler_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="courier.test")
    with stop_on_signals(stop.set, logging.getLogger("courier.test")):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before
    assert [(r.getMessage(), r.__dict__["signal"]) for r in caplog.records] == [
        ("stopping", "SIGTERM")
    ]


def test_off_the_main_thread_nothing_is_installed() -> None:
    results: list[object] = []

    def worker() -> None:
        restore = install_stop_handlers(lambda: None)
        results.append(signal.getsignal(signal.SIGINT))
        restore()

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert results == [before]
