"""Where the shared protobuf repository and its tools live in a Courier checkout."""

from __future__ import annotations

import os
from pathlib import Path

# src/courier/schemas/_layout.py -> the checkout's root.
PROJECT_ROOT = Path(__file__).resolve().parents[3]

DEFAULT_PROTO_DIR = PROJECT_ROOT / "proto"
DEFAULT_PYTHON_OUT = PROJECT_ROOT / "gen" / "python"
# Courier's own protos (proto/courier/...) generate under src/, as the package courier.v1.
DEFAULT_COURIER_SRC = PROJECT_ROOT / "src"

ENV_TOOLS_DIR = "COURIER_TOOLS_DIR"
ENV_BUF = "COURIER_BUF"

# The proto directory whose generated code belongs to the courier package itself.
COURIER_PROTO_ROOT = "courier"


def tools_dir() -> Path:
    """The npm project that pins buf: ``$COURIER_TOOLS_DIR``, else the checkout's ``tools/``."""
    if value := os.environ.get(ENV_TOOLS_DIR):
        return Path(value)
    return PROJECT_ROOT / "tools"
