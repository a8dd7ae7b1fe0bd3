"""buf, from the npm package ``@bufbuild/buf`` pinned in ``tools/package-lock.json``.

`ensure_buf` returns the path of ``tools/node_modules/.bin/buf``, running
``npm ci --prefix tools`` first when buf is missing or not the pinned version.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from courier.schemas._layout import ENV_BUF, tools_dir

BUF_PACKAGE = "@bufbuild/buf"

# buf's own exit code when it found lint or breaking-change problems (or compile errors).
BUF_EXIT_FILE_ANNOTATIONS = 100


class BufUnavailable(RuntimeError):
    """buf is not installed and cannot be installed (no npm, no lock file, npm failed).

    The message is one line meant for the user; the CLI prints it and exits 2.
    """


def buf_executable(tools: Path | None = None) -> Path:
    """Where npm puts buf inside the tools project (it may not exist yet)."""
    return (tools or tools_dir()) / "node_modules" / ".bin" / "buf"


def pinned_buf_version(tools: Path | None = None) -> str:
    """The buf version that ``tools/package-lock.json`` pins."""
    lock = (tools or tools_dir()) / "package-lock.json"
    try:
        data = json.loads(lock.read_text())
        return str(data["packages"][f"node_modules/{BUF_PACKAGE}"]["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise BufUnavailable(f"cannot read the pinned buf version from {lock}: {exc}") from exc


def installed_buf_version(tools: Path | None = None) -> str | None:
    """The version of the buf npm package installed in the tools project, if any."""
    manifest = (tools or tools_dir()) / "node_modules" / BUF_PACKAGE / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_buf(console: Console | None = None, tools: Path | None = None) -> Path:
    """Return the pinned buf executable, installing it with ``npm ci`` when needed.

    ``$COURIER_BUF`` names another buf binary and skips the installation.
    Raises `BufUnavailable` with a one-line reason when buf cannot be had.
    """
    if override := os.environ.get(ENV_BUF):
        path = Path(override)
        if not path.is_file():
            raise BufUnavailable(f"${ENV_BUF} is {override!r}, which is not a file")
        return path
    tools = tools or tools_dir()
    console = console or Console(stderr=True, soft_wrap=True)
    with _install_lock(tools):
        wanted = pinned_buf_version(tools)
        executable = buf_executable(tools)
        if executable.exists() and installed_buf_version(tools) == wanted:
            return executable
        _npm_ci(tools, wanted, console)
        if not executable.exists() or installed_buf_version(tools) != wanted:
            raise BufUnavailable(f"npm ci finished but {executable} is not buf {wanted}")
        return executable


def run_buf(args: Sequence[str], console: Console | None = None, cwd: Path | None = None) -> int:
    """Run buf with ``args``, its output going straight to ours; return buf's exit code."""
    executable = ensure_buf(console)
    return subprocess.run([str(executable), *args], cwd=cwd, check=False).returncode


def _npm_ci(tools: Path, version: str, console: Console) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BufUnavailable(
            "npm not found: Courier installs buf from the npm package @bufbuild/buf; "
            f"install Node.js and npm (e.g. apt-get install npm), or set ${ENV_BUF}"
        )
    console.print(f"Installing buf {version}: npm ci --prefix {tools} ...")
    started = time.monotonic()
    result = subprocess.run(
        [npm, "ci", "--prefix", str(tools), "--no-audit", "--no-fund", "--loglevel=error"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise BufUnavailable(f"npm ci --prefix {tools} failed: {' | '.join(tail)}")
    console.print(f"Installed buf {version} in {time.monotonic() - started:.1f}s")


@contextmanager
def _install_lock(tools: Path) -> Iterator[None]:
    # Several processes (tests, two developers' commands) may find buf missing at once;
    # concurrent `npm ci` runs delete each other's node_modules.
    digest = hashlib.sha256(str(tools.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"courier-buf-install-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
