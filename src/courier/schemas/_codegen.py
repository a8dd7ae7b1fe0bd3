"""Python code for the shared protobuf repository: grpcio-tools' protoc + mypy-protobuf.

Each ``.proto`` gives ``x_pb2.py`` (messages), ``x_pb2_grpc.py`` (stubs and servicers)
and ``.pyi`` typed stubs for both. Courier's own protos (``proto/courier/...``) become
part of the ``courier`` package under ``src/``; every other proto goes to ``gen/python``.

The output is a pure function of the protos and the pinned tool versions: generation
runs into a scratch directory, then only files whose bytes differ are written, and
generated files that no proto produces any more are removed.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from courier.schemas._layout import COURIER_PROTO_ROOT

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


class CodegenError(RuntimeError):
    """protoc or one of its plugins failed; the message holds protoc's own error text."""


@dataclass(frozen=True)
class GenerationResult:
    """What a generation run wrote (or, with ``check``, would write)."""

    written: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when the destination differs from what the protos generate."""
        return bool(self.written or self.removed)


def proto_files(proto_dir: Path) -> list[str]:
    """Every ``.proto`` under ``proto_dir``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(proto_dir).as_posix() for p in proto_dir.rglob("*.proto"))


def generate_python(
    proto_dir: Path, out: Path, courier_src: Path, *, check: bool = False
) -> GenerationResult:
    """Generate Python for every proto in ``proto_dir`` and sync it into place.

    ``out`` receives all packages but ``courier``; ``courier_src`` is the source root
    that holds the ``courier`` package. With ``check`` nothing is written: the result
    says what would change.
    """
    files = proto_files(proto_dir)
    if not files:
        raise CodegenError(f"no .proto files under {proto_dir}")
    own = [f for f in files if f.split("/", 1)[0] == COURIER_PROTO_ROOT]
    others = [f for f in files if f not in own]
    plan = ((own, courier_src, courier_src / COURIER_PROTO_ROOT), (others, out, out))
    written: list[Path] = []
    removed: list[Path] = []
    unchanged: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="courier-codegen-") as scratch:
        for index, (group, destination, scope) in enumerate(plan):
            if not group:
                continue  # and leave that destination alone: it is not ours this run
            staged = Path(scratch) / str(index)
            staged.mkdir()
            _run_protoc(proto_dir, group, staged)
            _add_package_markers(staged)
            w, r, u = _sync(staged, destination, scope, check=check)
            written += w
            removed += r
            unchanged += u
    return GenerationResult(tuple(written), tuple(removed), tuple(unchanged))


def _run_protoc(proto_dir: Path, files: list[str], out: Path) -> None:
    well_known = resources.files("grpc_tools") / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_dir}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CodegenError((result.stderr or result.stdout).strip() or "protoc failed")


def _plugin(name: str) -> Path:
    # Console scripts of mypy-protobuf sit next to the interpreter in a virtualenv,
    # which need not be on PATH.
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise CodegenError(f"{name} not found: install mypy-protobuf (pip install mypy-protobuf)")
    return Path(found)


def _add_package_markers(root: Path) -> None:
    # Regular packages (not namespace packages), so hatch, mypy and pkgutil all see them.
    for directory in {p.parent for p in root.rglob("*_pb2.py")}:
        while directory != root:
            (directory / "__init__.py").touch()
            directory = directory.parent


def _sync(
    staged: Path, destination: Path, scope: Path, *, check: bool
) -> tuple[list[Path], list[Path], list[Path]]:
    """Copy changed files from ``staged`` to ``destination``; drop stale ones in ``scope``."""
    written: list[Path] = []
    unchanged: list[Path] = []
    produced: set[Path] = set()
    for source in sorted(p for p in staged.rglob("*") if p.is_file()):
        target = destination / source.relative_to(staged)
        produced.add(target)
        if target.name == "__init__.py" and target.exists():
            continue  # never overwrite a hand-written package __init__
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            unchanged.append(target)
            continue
        written.append(target)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    removed = [
        path
        for path in (sorted(scope.rglob("*")) if scope.is_dir() else [])
        if path.is_file() and path.name.endswith(GENERATED_SUFFIXES) and path not in produced
    ]
    if not check:
        for path in removed:
            path.unlink()
    return written, removed, unchanged
