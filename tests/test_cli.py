"""The `courier` command: every stage's commands load, and usage errors exit 2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from courier import cli


@pytest.mark.parametrize(("module", "attr", "name"), [*cli._SUBCOMMANDS, *cli._COMMANDS])
def test_every_registered_command_loads(module: str, attr: str, name: str) -> None:
    assert getattr(importlib.import_module(module), attr) is not None
    result = subprocess.run(
        [sys.executable, "-m", "courier", name, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "courier", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
