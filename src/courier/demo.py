"""``courier demo``: the README's first command.

For now it brings the local stack up and shows that every service answers; the
end-to-end demo (producer -> relay -> broker -> consumers, with reconciliation) builds on it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from courier.devstack.cli import _print_status, bring_up, err
from courier.devstack.config import StackConfig
from courier.devstack.processes import StackError


def demo(
    with_connect: Annotated[
        bool, typer.Option("--with-connect", help="Also start Kafka Connect with Debezium.")
    ] = False,
) -> None:
    """Bring the local stack up and show its status."""
    config = StackConfig.from_env()
    try:
        seconds = bring_up(config, with_connect=with_connect)
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    err.print(f"stack up in {seconds:.1f}s")
    rows = _print_status(config)
    if not all(row.answering for row in rows):
        raise typer.Exit(1)
