"""Fixtures for the shared protobuf repository's tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from courier.schemas import ensure_buf
from courier.schemas._layout import DEFAULT_PROTO_DIR

RunCourier = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def buf() -> Path:
    """The pinned buf; ``npm ci --prefix tools`` installs it if missing (the CLI's own code)."""
    return ensure_buf()


@pytest.fixture()
def run_courier() -> RunCourier:
    """Run ``python -m courier ARGS`` and return the finished process (output captured)."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "courier", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture()
def proto_copy(tmp_path: Path) -> Path:
    """A private copy of the shared protobuf repository (buf.yaml included)."""
    target = tmp_path / "proto"
    shutil.copytree(DEFAULT_PROTO_DIR, target)
    return target
