"""`courier schemas generate`: grpcio-tools + mypy-protobuf, reproducible byte for byte."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from courier.schemas import generate_python
from courier.schemas._codegen import GENERATED_SUFFIXES
from courier.schemas._layout import PROJECT_ROOT

RunCourier = Callable[..., subprocess.CompletedProcess[str]]

COMMITTED_ROOTS = {
    "out": PROJECT_ROOT / "gen" / "python",
    "courier": PROJECT_ROOT / "src" / "courier" / "v1",
}


def _generated_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and (path.name.endswith(GENERATED_SUFFIXES) or path.name == "__init__.py")
    }


def test_generate_reproduces_the_committed_code(run_courier: RunCourier, tmp_path: Path) -> None:
    out, src = tmp_path / "gen" / "python", tmp_path / "src"
    result = run_courier("schemas", "generate", "--out", str(out), "--courier-src", str(src))
    assert result.returncode == 0, result.stderr

    generated = _generated_files(out)
    committed = _generated_files(COMMITTED_ROOTS["out"])
    assert sorted(generated) == sorted(committed)
    assert generated == committed  # byte for byte
    assert _generated_files(src / "courier" / "v1") == _generated_files(COMMITTED_ROOTS["courier"])
    expected = {
        "packages_pb2.py",
        "packages_pb2.pyi",
        "events_pb2.py",
        "events_pb2.pyi",
        "events_api_pb2.py",
        "events_api_pb2_grpc.py",
        "events_api_pb2_grpc.pyi",
    }
    assert expected <= {Path(name).name for name in generated}


def test_check_passes_on_the_committed_code(run_courier: RunCourier) -> None:
    result = run_courier("schemas", "generate", "--check")
    assert result.returncode == 0, result.stderr
    assert "0 written, 0 removed" in result.stderr


def test_check_fails_and_writes_nothing_when_code_is_missing(
    run_courier: RunCourier, tmp_path: Path
) -> None:
    out, src = tmp_path / "gen", tmp_path / "src"
    result = run_courier(
        "schemas", "generate", "--check", "--out", str(out), "--courier-src", str(src)
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert not out.exists()
    assert not src.exists()


def test_second_run_changes_nothing_and_stale_files_go(proto_copy: Path, tmp_path: Path) -> None:
    out, src = tmp_path / "gen", tmp_path / "src"
    first = generate_python(proto_copy, out, src)
    assert first.written and not first.removed

    again = generate_python(proto_copy, out, src)
    assert not again.changed

    (proto_copy / "packages" / "v1" / "events_api.proto").unlink()
    pruned = generate_python(proto_copy, out, src)
    gone = {path.name for path in pruned.removed}
    assert gone == {
        "events_api_pb2.py",
        "events_api_pb2.pyi",
        "events_api_pb2_grpc.py",
        "events_api_pb2_grpc.pyi",
    }
    assert not (out / "packages" / "v1" / "events_api_pb2.py").exists()
    assert (out / "packages" / "v1" / "events_pb2.py").exists()


def test_a_proto_error_is_reported_with_exit_1(
    run_courier: RunCourier, proto_copy: Path, tmp_path: Path
) -> None:
    (proto_copy / "packages" / "v1" / "broken.proto").write_text(
        'syntax = "proto3";\npackage packages.v1;\nmessage Broken { NoSuchType x = 1; }\n'
    )
    result = run_courier(
        "schemas",
        "generate",
        "--proto-dir",
        str(proto_copy),
        "--out",
        str(tmp_path / "gen"),
        "--courier-src",
        str(tmp_path / "src"),
    )
    assert result.returncode == 1
    assert "NoSuchType" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_code_imports_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # What a consumer team types, as in the article.
    program = (
        "from google.protobuf.empty_pb2 import Empty\n"
        "from packages.v1 import events_api_pb2_grpc, events_pb2, packages_pb2\n"
        "class EventsAPI(events_api_pb2_grpc.EventsAPIServicer):\n"
        "    def PackageDelivered(self, request, context):\n"
        "        return Empty()\n"
        "event = events_pb2.PackageDelivered(package=packages_pb2.Package(id='p-1'))\n"
        "print(EventsAPI().PackageDelivered(event, None) == Empty())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
