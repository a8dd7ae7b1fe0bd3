"""`courier schemas lint` and `courier schemas breaking` with the real buf from npm."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from courier.schemas import BufUnavailable, ensure_buf
from courier.schemas._buf import installed_buf_version, pinned_buf_version
from courier.schemas._layout import PROJECT_ROOT

RunCourier = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.usefixtures("buf")


def test_the_shared_repository_passes_lint(run_courier: RunCourier) -> None:
    result = run_courier("schemas", "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_failures_exit_1_and_name_the_problem(
    run_courier: RunCourier, proto_copy: Path
) -> None:
    (proto_copy / "packages" / "v1" / "bad.proto").write_text(
        'syntax = "proto3";\npackage packages.v1;\n\n'
        "enum Colour {\n  RED = 0;\n}\n\nmessage bad_name {\n  string Field = 1;\n}\n"
    )
    result = run_courier("schemas", "lint", "--proto-dir", str(proto_copy))
    assert result.returncode == 1
    assert "bad.proto" in result.stdout
    assert 'Message name "bad_name" should be PascalCase' in result.stdout
    assert 'should be suffixed with "_UNSPECIFIED"' in result.stdout


def test_compile_errors_are_lint_failures(run_courier: RunCourier, proto_copy: Path) -> None:
    (proto_copy / "packages" / "v1" / "broken.proto").write_text(
        'syntax = "proto3";\npackage packages.v1;\nmessage Broken { NoSuchType x = 1; }\n'
    )
    result = run_courier("schemas", "lint", "--proto-dir", str(proto_copy))
    assert result.returncode == 1
    assert "NoSuchType" in result.stdout + result.stderr


def test_lint_of_a_missing_directory_is_bad_usage(run_courier: RunCourier, tmp_path: Path) -> None:
    result = run_courier("schemas", "lint", "--proto-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture()
def schema_repo(tmp_path: Path) -> Path:
    """A git repository whose ``schemas/`` subdirectory is the shared proto repo, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_ROOT / "proto", repo / "schemas")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "protos")
    return repo


def test_breaking_detects_a_removed_field(run_courier: RunCourier, schema_repo: Path) -> None:
    events = schema_repo / "schemas" / "packages" / "v1" / "events.proto"
    events.write_text(events.read_text().replace("  string received_by = 2;\n", ""))
    result = run_courier(
        "schemas", "breaking", "--against", "main", "--proto-dir", str(schema_repo / "schemas")
    )
    assert result.returncode == 1, result.stderr
    assert 'field "2" with name "received_by" on message "PackageDelivered" was deleted' in (
        result.stdout
    )


def test_breaking_compares_with_an_older_commit(run_courier: RunCourier, schema_repo: Path) -> None:
    events = schema_repo / "schemas" / "packages" / "v1" / "events.proto"
    events.write_text(events.read_text().replace("  string reason = 2;\n", ""))
    _git(schema_repo, "commit", "-q", "-am", "drop reason")
    proto_dir = str(schema_repo / "schemas")
    assert (
        run_courier("schemas", "breaking", "--against", "HEAD", "--proto-dir", proto_dir).returncode
        == 0
    )
    older = run_courier("schemas", "breaking", "--against", "HEAD~1", "--proto-dir", proto_dir)
    assert older.returncode == 1
    assert '"reason" on message "PackageReturned" was deleted' in older.stdout


def test_adding_a_field_is_not_breaking(run_courier: RunCourier, schema_repo: Path) -> None:
    events = schema_repo / "schemas" / "packages" / "v1" / "events.proto"
    text = events.read_text()
    reason = "  string reason = 2;\n"
    events.write_text(text.replace(reason, reason + "  string note = 3;\n"))
    result = run_courier(
        "schemas", "breaking", "--against", "main", "--proto-dir", str(schema_repo / "schemas")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_breaking_against_an_unknown_ref_is_bad_usage(
    run_courier: RunCourier, schema_repo: Path
) -> None:
    result = run_courier(
        "schemas",
        "breaking",
        "--against",
        "no-such-branch",
        "--proto-dir",
        str(schema_repo / "schemas"),
    )
    assert result.returncode == 2
    assert "unknown git ref 'no-such-branch'" in result.stderr


def _tools_copy(tmp_path: Path) -> Path:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PROJECT_ROOT / "tools" / name, tools / name)
    return tools


def test_ensure_buf_installs_the_pinned_version_once(tmp_path: Path) -> None:
    tools = _tools_copy(tmp_path)
    output = io.StringIO()
    console = Console(file=output, width=200)

    executable = ensure_buf(console, tools=tools)

    assert executable == tools / "node_modules" / ".bin" / "buf"
    assert installed_buf_version(tools) == pinned_buf_version(tools)
    assert f"Installing buf {pinned_buf_version(tools)}" in output.getvalue()
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == pinned_buf_version(tools)

    output.truncate(0)
    output.seek(0)
    assert ensure_buf(console, tools=tools) == executable
    assert output.getvalue() == ""  # already there: no second npm ci


def test_missing_npm_is_one_clear_line(run_courier: RunCourier, tmp_path: Path) -> None:
    if os.environ.get("COURIER_BUF"):
        pytest.skip("COURIER_BUF bypasses the npm installation")
    env = dict(os.environ, COURIER_TOOLS_DIR=str(_tools_copy(tmp_path)), PATH=str(tmp_path))
    result = run_courier("schemas", "lint", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: npm not found: Courier installs buf from the npm package @bufbuild/buf; "
        "install Node.js and npm (e.g. apt-get install npm), or set $COURIER_BUF"
    ]


def test_ensure_buf_without_a_lock_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(BufUnavailable, match=r"package-lock\.json"):
        ensure_buf(Console(file=io.StringIO()), tools=tmp_path)
