"""The demo's child processes: started with their own log files, stopped on any exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from courier.devstack.processes import StackError, log_tail, port_is_free, spawn_logged


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path


@dataclass
class Supervisor:
    """Starts the demo's services and guarantees they are all stopped afterwards."""

    run_dir: Path
    env: dict[str, str]
    cwd: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        ports: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Child:
        for port in ports:
            if not port_is_free(port):
                raise StackError(f"{name}: port {port} on 127.0.0.1 is already in use")
        log_file = self.run_dir / f"{name}.log"
        process = spawn_logged(argv, log_file, env={**self.env, **(env or {})}, cwd=self.cwd)
        child = Child(name, process, log_file)
        self.children.append(child)
        return child

    def python(
        self,
        name: str,
        module: str,
        *args: str,
        ports: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Child:
        return self.start(name, [sys.executable, "-m", module, *args], ports=ports, env=env)

    def courier(
        self,
        name: str,
        *args: str,
        ports: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Child:
        return self.python(name, "courier", *args, ports=ports, env=env)

    def check_alive(self, allow_exit: frozenset[str] | set[str] = frozenset()) -> None:
        """Fail loudly, with the log's tail, when a service died (or a job in ``allow_exit``
        failed)."""
        for child in self.children:
            code = child.process.poll()
            if code is not None and (child.name not in allow_exit or code != 0):
                raise StackError(
                    f"{child.name} exited with code {code}; last lines of {child.log_file}:\n  "
                    + log_tail(child.log_file, 6)
                )

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (newest first), SIGKILL what is still there after ``timeout``."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(5)
        self.children.clear()
