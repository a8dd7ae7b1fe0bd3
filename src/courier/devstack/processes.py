"""Starting, finding and stopping the stack's background processes.

Each service runs detached (its own session, so a Ctrl-C in the shell that ran
``courier dev up`` does not take it down) and leaves a pid file beside its data.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A service of the local stack could not be installed, started or reached.

    The message says which service and what to do; ``courier dev`` prints it and exits 1.
    """


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(service: str, port: int, env_var: str) -> None:
    """Fail at once, naming the port, when something else already listens on it."""
    if not port_is_free(port):
        raise StackError(
            f"{service}: port {port} on 127.0.0.1 is already in use by another process; "
            f"stop it or choose another port with {env_var}=<port>"
        )


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is still alive, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def spawn_logged(
    argv: Sequence[str],
    log_file: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_detached(
    argv: Sequence[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``argv`` in its own session, output appended to ``log_file``; returns its pid."""
    proc = spawn_logged(argv, log_file, env=env)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_process(pid_file: Path, timeout: float = 30.0) -> bool:
    """SIGTERM the process of ``pid_file``, SIGKILL after ``timeout``; True if one was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read_pid(pid_file) is not None:
        _reap(pid)
        time.sleep(0.2)
    if read_pid(pid_file) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
    interval: float = 0.5,
) -> None:
    """Poll ``ready`` until it returns True; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up{_log_hint(log_file)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not answer within {timeout:.0f}s{_log_hint(log_file)}")
        time.sleep(interval)


def log_tail(log_file: Path, lines: int) -> str:
    """The last ``lines`` lines of ``log_file``, one per line, indented for an error message."""
    tail = log_file.read_text(errors="replace").strip().splitlines()[-lines:]
    return "\n  ".join(tail)


def _log_hint(log_file: Path | None) -> str:
    if log_file is None or not log_file.exists():
        return ""
    return f"; last lines of {log_file}:\n  {log_tail(log_file, 8)}"
