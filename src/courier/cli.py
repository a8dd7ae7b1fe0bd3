"""The ``courier`` command: one typer app that mounts each stage's commands.

Exit codes: 0 success, 1 failure, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

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
    ("courier.outbox.cli", "app", "outbox"),
    ("courier.relay.cli", "app", "relay"),
    ("courier.broker.cli", "app", "broker"),
    ("courier.broker.topics", "app", "topics"),
    ("courier.broker.dlq", "app", "dlq"),
    ("courier.contract", "app", "contract"),
    ("courier.lake.cli", "app", "lake"),
]
_COMMANDS: list[tuple[str, str, str]] = [
    ("courier.demo", "demo", "demo"),
]


class _LazyGroup(TyperGroup):
    """Imports a stage's module only when its command runs (or when help lists it).

    ``courier dev up`` must not pay for importing gRPC, pyarrow or Django, and a stage
    that is broken must not take every other command down with it.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        lazy = [name for _, _, name in (*_SUBCOMMANDS, *_COMMANDS)]
        return sorted({*super().list_commands(ctx), *lazy})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        for module_name, attr, name in _SUBCOMMANDS:
            if name == cmd_name:
                sub_app = getattr(importlib.import_module(module_name), attr)
                group = typer.main.get_group(sub_app)
                group.name = name
                return group
        for module_name, attr, name in _COMMANDS:
            if name == cmd_name:
                single = typer.Typer()
                single.command(name=name)(getattr(importlib.import_module(module_name), attr))
                command = typer.main.get_command(single)
                command.name = name
                return command
        return super().get_command(ctx, cmd_name)


app.info.cls = _LazyGroup


@app.callback()
def _root() -> None:
    """Courier: transactional outbox -> Kafka -> gRPC, with retries, DLQs and replay."""


def main() -> None:
    """Console-script entry point."""
    app()
