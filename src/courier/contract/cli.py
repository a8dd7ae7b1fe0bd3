"""``courier contract check``: the broker YAML, the consumer servers and ``proto/`` agree.

Exit codes: 0 all good, 1 problems found (one line each on stdout), 2 bad config or protos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from courier.contract.check import check_contracts
from courier.contract.topics import ProtoError, TopicCatalog

app = typer.Typer(
    help="Check consumer services against the broker configuration and the protobuf topics.",
    no_args_is_help=True,
)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

DEFAULT_PROTO_DIR = Path("proto")


@app.callback()
def _group() -> None:
    """Check consumer services against the broker configuration and the protobuf topics."""


@app.command()
def check(
    config: Annotated[Path, typer.Option("--config", "-c", help="Broker configuration YAML.")],
    proto_dir: Annotated[
        Path,
        typer.Option(help="Shared protobuf repository; topics come from (courier.v1.topic)."),
    ] = DEFAULT_PROTO_DIR,
    descriptor_set: Annotated[
        Path | None,
        typer.Option(help="A FileDescriptorSet (`buf build -o`) to read instead of --proto-dir."),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Check only this consumer (repeatable).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each consumer server.", min=0.1)
    ] = 5.0,
    strict: Annotated[
        bool, typer.Option(help="Also fail on warnings (topics no message declares).")
    ] = False,
) -> None:
    """Every configured method exists on its consumer and takes the type its topic carries.

    Connects to each consumer's gRPC server through server reflection. One line per problem,
    exit 1 when there is any; a server that cannot be reached is a problem, not a hang.
    """
    broker = _load_config(config)
    consumers = list(broker.consumers.values())
    if only:
        try:
            consumers = [broker.consumer(name) for name in only]
        except KeyError as exc:
            _usage_error(str(exc.args[0]))
    catalog = _catalog(proto_dir, descriptor_set, explicit_dir=proto_dir != DEFAULT_PROTO_DIR)
    problems = check_contracts(consumers, catalog, timeout=timeout)
    failures = [p for p in problems if strict or not p.warning]
    for problem in problems:
        if problem in failures:
            print(problem, flush=True)
        else:
            _err.print(f"warning: {problem}", markup=False)
    methods = sum(len(entry.methods) for c in consumers for entry in c.distribution)
    scope = f"{len(consumers)} consumer(s), {methods} method(s)"
    if failures:
        _err.print(f"contract check: {len(failures)} problem(s) in {scope}", markup=False)
        raise typer.Exit(1)
    _err.print(f"contract check: {scope} match their topics", markup=False)


def _load_config(path: Path) -> Any:
    from courier.broker.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:  # already one "<file>:<line>: <key>: <message>" line per problem
        _err.print(str(exc), markup=False)
        raise typer.Exit(2) from None


def _catalog(proto_dir: Path, descriptor_set: Path | None, *, explicit_dir: bool) -> TopicCatalog:
    try:
        if descriptor_set is not None:
            return TopicCatalog.from_descriptor_set(descriptor_set)
        if proto_dir.is_dir() or explicit_dir:
            return TopicCatalog.from_proto_dir(proto_dir)
    except ProtoError as exc:
        _usage_error(str(exc))
    # No proto/ here (a consumer's own repository): the generated code installed with it.
    from courier.schemas import events_by_topic

    return TopicCatalog({t: frozenset(names) for t, names in events_by_topic().items()})


def _usage_error(message: str) -> NoReturn:
    _err.print(f"error: {message}", markup=False)
    raise typer.Exit(2)
