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


def _load(module_name: str, attr: str) -> object | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a stage that is not in this checkout is skipped; a broken import still fails.
        # tests/test_cli.py checks that every listed stage loads.
        if exc.name == module_name:
            return None
        raise
    return getattr(module, attr)


def _mount() -> None:
    for module_name, attr, name in _SUBCOMMANDS:
        if (sub_app := _load(module_name, attr)) is not None:
            app.add_typer(sub_app, name=name)  # type: ignore[arg-type]
    for module_name, attr, name in _COMMANDS:
        if (command := _load(module_name, attr)) is not None:
            app.command(name=name)(command)  # type: ignore[arg-type]


_mount()


def main() -> None:
    """Console-script entry point."""
    app()
