"""The ``courier`` command: one typer app that mounts each stage's commands.

Exit codes: 0 success, 1 failure, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="courier",
    help="Courier: transactional outbox -> Kafka -> gRPC, with retries, DLQs and replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (module, attribute, command name). Each stage owns its commands in its own cli module.
_SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("courier.devstack.cli", "app", "dev"),
    ("courier.schemas", "app", "schemas"),
]
_COMMANDS: list[tuple[str, str, str]] = [
    ("courier.demo", "demo", "demo"),
]


def _mount() -> None:
    for module_name, attr, name in _SUBCOMMANDS:
        module = importlib.import_module(module_name)
        app.add_typer(getattr(module, attr), name=name)
    for module_name, attr, name in _COMMANDS:
        module = importlib.import_module(module_name)
        app.command(name=name)(getattr(module, attr))


_mount()


def main() -> None:
    """Console-script entry point."""
    app()
