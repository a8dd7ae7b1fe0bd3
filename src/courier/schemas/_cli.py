"""``courier schemas lint | breaking | generate``: the shared protobuf repository's checks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from courier.schemas._buf import BUF_EXIT_FILE_ANNOTATIONS, BufUnavailable, run_buf
from courier.schemas._codegen import CodegenError, generate_python
from courier.schemas._layout import DEFAULT_COURIER_SRC, DEFAULT_PROTO_DIR, DEFAULT_PYTHON_OUT

app = typer.Typer(
    help="The shared protobuf repository: buf lint, breaking-change check, Python codegen.",
    no_args_is_help=True,
)

_console = Console(stderr=True, soft_wrap=True)

ProtoDir = Annotated[
    Path,
    typer.Option("--proto-dir", help="The buf module (directory holding buf.yaml)."),
]


@app.command()
def lint(proto_dir: ProtoDir = DEFAULT_PROTO_DIR) -> None:
    """Lint the protos with buf (rules in <proto-dir>/buf.yaml). Exit 1 on findings."""
    _require_dir(proto_dir)
    _exit_with(_buf(["lint", str(proto_dir)]))


@app.command()
def breaking(
    against: Annotated[
        str,
        typer.Option("--against", help="Git ref to compare with: a branch, tag, or commit."),
    ],
    proto_dir: ProtoDir = DEFAULT_PROTO_DIR,
) -> None:
    """Check for breaking changes against a git ref (buf, FILE rules). Exit 1 if any."""
    _require_dir(proto_dir)
    against_input = git_against_input(proto_dir, against)
    _exit_with(_buf(["breaking", str(proto_dir), "--against", against_input]))


@app.command()
def generate(
    proto_dir: ProtoDir = DEFAULT_PROTO_DIR,
    out: Annotated[
        Path, typer.Option("--out", help="Where generated code for example/user protos goes.")
    ] = DEFAULT_PYTHON_OUT,
    courier_src: Annotated[
        Path,
        typer.Option("--courier-src", help="Source root of the courier package (courier/v1)."),
    ] = DEFAULT_COURIER_SRC,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the generated code is stale."),
    ] = False,
) -> None:
    """Generate Python (_pb2, _pb2_grpc and .pyi stubs) with grpcio-tools' protoc."""
    _require_dir(proto_dir)
    try:
        result = generate_python(proto_dir, out, courier_src, check=check)
    except CodegenError as exc:
        _console.print(f"[red]protoc failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    verb = ("stale", "missing/extra") if check else ("wrote", "removed")
    for path in result.written:
        _console.print(f"{verb[0]} {path}", highlight=False)
    for path in result.removed:
        _console.print(f"{verb[1]} {path}", highlight=False)
    if check and result.changed:
        _console.print("[red]generated code is out of date:[/] run `courier schemas generate`")
        raise typer.Exit(1)
    _console.print(
        f"{len(result.written)} written, {len(result.removed)} removed, "
        f"{len(result.unchanged)} unchanged"
    )


def git_against_input(proto_dir: Path, ref: str) -> str:
    """buf's input for ``proto_dir`` as it is at git ``ref`` of the repository holding it.

    ``ref`` is resolved to a full commit id first, so a typo fails here with a clear
    message (exit 2) instead of inside buf's clone.
    """
    directory = proto_dir.resolve()
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top is None:
        _fail(f"{proto_dir} is not inside a git repository; `breaking` compares with a git ref")
    commit = _git(directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit is None:
        _fail(f"unknown git ref {ref!r} in {top}")
    subdir = directory.relative_to(Path(top).resolve()).as_posix()
    suffix = "" if subdir == "." else f",subdir={subdir}"
    return f"{top}/.git#ref={commit}{suffix}"


def _git(cwd: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _buf(args: list[str]) -> int:
    try:
        return run_buf(args, _console)
    except BufUnavailable as exc:
        _fail(str(exc))


def _exit_with(buf_code: int) -> None:
    # buf: 0 clean, 100 findings (lint, breaking, compile errors), 1 anything else
    # (bad input, bad buf.yaml) -- which is bad usage or bad configuration for us.
    if buf_code == 0:
        return
    if buf_code == BUF_EXIT_FILE_ANNOTATIONS:
        raise typer.Exit(1)
    _console.print(f"[red]buf failed[/] (exit {buf_code})")
    raise typer.Exit(2)


def _require_dir(proto_dir: Path) -> None:
    if not proto_dir.is_dir():
        _fail(f"proto directory {proto_dir} does not exist")


def _fail(message: str) -> NoReturn:
    _console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)
