"""``courier lake ...`` usage errors: one clear line, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from courier.cli import app

from .lake_helpers import write_segment

runner = CliRunner()


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["lake", *args])


def test_query_prints_csv_and_json(tmp_path: Path) -> None:
    write_segment(tmp_path, "orders", 0, range(4))
    result = _run("query", "select topic, count(*) as n from events group by 1", "--lake",
                  str(tmp_path), "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "topic,n\norders,4\n"
    result = _run("query", 'select "offset" from orders order by 1', "--lake", str(tmp_path),
                  "--format", "json")  # fmt: skip
    assert json.loads(result.stdout) == [{"offset": i} for i in range(4)]


def test_query_usage_errors_exit_2(tmp_path: Path) -> None:
    for args, message in [
        (("select 1", "--lake", str(tmp_path / "missing")), "no lake directory"),
        (("select 1", "--lake", str(tmp_path), "--format", "xml"), "--format"),
        (("selec 1", "--lake", str(tmp_path)), "Parser Error"),
        (("select nope from events", "--lake", str(tmp_path)), "Binder Error"),
    ]:
        result = _run("query", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_compact_reports_what_it_did(tmp_path: Path) -> None:
    write_segment(tmp_path, "orders", 0, range(0, 3))
    write_segment(tmp_path, "orders", 0, range(3, 6))
    result = _run("compact", "--lake", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("merged 2 files into 1 (6 events, 0 duplicates dropped")
    assert _run("compact", "--lake", str(tmp_path / "missing")).exit_code == 2


def test_sink_usage_errors_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broker.yaml"
    broken.write_text("consumers: [\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for args, message in [
        (("--out", str(tmp_path), "--consumer-config", "oops"), "key=value"),
        (("--out", str(tmp_path), "--broker-config", str(broken)), "--broker-config"),
        (("--out", str(blocker / "lake")), "cannot create the lake directory"),
        (("--out", str(tmp_path), "--descriptor-set", str(tmp_path / "none.binpb")),
         "--descriptor-set"),
    ]:  # fmt: skip
        result = _run("sink", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
