"""The README's ten-minute walk-through, run step by step from the README's own text.

Every code block of the walk-through is preceded by a marker comment in README.md::

    <!-- walkthrough:append proto/packages/v1/events.proto -->      append the block to a file
    <!-- walkthrough:insert-into-service FILE SERVICE -->          insert it before the service's }
    <!-- walkthrough:file claims/service.py -->                     create a file with the block
    <!-- walkthrough:shell -->                                      run each command line
    <!-- walkthrough:output NAME -->                                what the last step must print
    <!-- walkthrough:setup -->                                      the reader's shell set-up

The test applies the blocks in order to a temporary copy of the project's ``proto/`` (the
repository's own ``proto/``, ``gen/`` and ``examples/`` are never touched), with the README's
fixed names (topics, consumer, port) made unique for this run, against a database of its own
on the dev stack's Postgres and the dev stack's Kafka.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from broker.broker_harness import free_port
from confluent_kafka.admin import AdminClient

from courier.consumer import build_server

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

MARKER = re.compile(r"<!-- walkthrough:(?P<kind>[a-z-]+)(?P<args>[^>]*?)\s*-->")
BLOCK = re.compile(
    r"<!-- walkthrough:(?P<kind>[a-z-]+)(?P<args>[^>]*?)\s*-->\n```[a-z]*\n(?P<text>.*?)```",
    re.S,
)
KINDS = {"setup", "append", "insert-into-service", "file", "shell", "output"}
# The reader's shell set-up; the test's environment does the same (the `stack` fixture).
SETUP_COMMANDS = [
    ["source", ".venv/bin/activate"],
    ["courier", "dev", "up"],
    ["eval", "$(courier dev env)"],
]
# The schemas commands default to the checkout's proto/ and gen/python/: point them at the copy.
EXTRA_FLAGS: dict[tuple[str, ...], list[str]] = {
    ("schemas", "lint"): ["--proto-dir", "proto"],
    ("schemas", "generate"): [
        "--proto-dir",
        "proto",
        "--out",
        "gen/python",
        "--courier-src",
        "src",
    ],
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class Block:
    """One marked code block of the README."""

    kind: str
    args: tuple[str, ...]
    text: str


def readme_blocks(text: str | None = None) -> list[Block]:
    """The walk-through's blocks, in README order."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [Block(m["kind"], tuple(m["args"].split()), m["text"]) for m in BLOCK.finditer(text)]


def commands(block: Block) -> list[list[str]]:
    """The command lines of a shell block, comments dropped."""
    lines = (shlex.split(line, comments=True) for line in block.text.splitlines())
    return [line for line in lines if line]


def test_every_marker_is_a_known_step_followed_by_its_code_block() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = readme_blocks(text)
    assert len(blocks) == len(MARKER.findall(text)), "a walkthrough marker without a code block"
    assert {b.kind for b in blocks} <= KINDS
    assert [b.kind for b in blocks if b.kind == "setup"] == ["setup"]
    assert [commands(b) for b in blocks if b.kind == "setup"] == [SETUP_COMMANDS]
    outputs = [b.args for b in blocks if b.kind == "output"]
    assert outputs == [("contract-ok",), ("contract-missing",), ("delivered",)]


@dataclass
class Walkthrough:
    """Applies the README's blocks to a project directory and runs its commands."""

    project: Path
    env: dict[str, str]
    replacements: list[tuple[str, str]]
    background: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    last: subprocess.CompletedProcess[str] | None = None

    def text(self, block: Block | str) -> str:
        """The block (or text) with the README's fixed names made unique for this run."""
        text = block.text if isinstance(block, Block) else block
        for pattern, replacement in self.replacements:
            text = re.sub(pattern, replacement, text, flags=re.M)
        return text

    def apply(self, block: Block) -> None:
        """An edit block: append to, insert into, or create a file in the project."""
        target = self.project / block.args[0]
        text = self.text(block)
        if block.kind == "append":
            source = target.read_text(encoding="utf-8")
            target.write_text(f"{source.rstrip()}\n\n{text}", encoding="utf-8")
        elif block.kind == "insert-into-service":
            source = target.read_text(encoding="utf-8")
            opening = source.index(f"service {block.args[1]} {{")
            closing = source.index("\n}", opening) + 1
            target.write_text(source[:closing] + text + source[closing:], encoding="utf-8")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def argv(self, line: list[str]) -> list[str]:
        if line[0] == "courier":
            return [
                sys.executable,
                "-m",
                "courier",
                *line[1:],
                *EXTRA_FLAGS.get(tuple(line[1:3]), []),
            ]
        assert line[0] == "python", f"the test does not know how to run {line}"
        return [sys.executable, *line[1:]]

    def run(self, line: list[str]) -> subprocess.CompletedProcess[str]:
        if line[-1] == "&":
            log = self.project / f"background-{len(self.background) + 1}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    self.argv(line[:-1]), cwd=self.project, env=self.env, stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            self.background.append((process, log))
            self.wait_for_start(line[:-1], process, log)
            return subprocess.CompletedProcess(line, 0, "", "")
        if line[0] == "kill":
            jobs = [f"%{n}" for n in range(1, len(self.background) + 1)]
            assert line[1:] == jobs, f"the README stops {line[1:]}, the walk-through started {jobs}"
            codes = self.stop_background()
            assert codes == [0] * len(codes), f"exit codes on SIGTERM: {codes}\n{self.logs()}"
            return subprocess.CompletedProcess(line, 0, "", "")
        result = subprocess.run(
            self.argv(line), cwd=self.project, env=self.env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        self.last = result
        return result

    def wait_for_start(self, line: list[str], process: subprocess.Popen[bytes], log: Path) -> None:
        """A background consumer service is up once its port answers."""
        if line[0] != "python":
            return
        port = int(re.findall(r"port=(\d+)", (self.project / line[1]).read_text())[-1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{line} exited:\n{log.read_text()}"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        pytest.fail(f"{line} did not listen on {port} within 20s:\n{log.read_text()}")

    def stop_background(self) -> list[int | None]:
        for process, _ in self.background:
            if process.poll() is None:
                process.terminate()
        codes: list[int | None] = []
        for process, _ in self.background:
            try:
                codes.append(process.wait(timeout=20))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes

    def wait_for_output(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first background process log line matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, log in self.background:
                found = re.search(pattern, log.read_text(errors="replace"), re.M)
                if found:
                    return found
            time.sleep(0.1)
        pytest.fail(f"nothing matched {pattern!r} within {timeout}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.background)


def _expected_lines(walk: Walkthrough, block: Block) -> list[str]:
    return walk.text(block).strip().splitlines()


@pytest.fixture()
def walk_database(database_url: str, unique: Callable[[str], str]) -> Iterator[str]:
    """A database of its own: the walk-through uses the default outbox table name."""
    name = unique("walkthrough")
    base, _, _ = database_url.rpartition("/")
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_readme_walkthrough_delivers_a_new_event_end_to_end(
    tmp_path: Path, bootstrap_servers: str, walk_database: str, unique: Callable[[str], str]
) -> None:
    from packages.v1 import events_api_pb2_grpc  # the committed code: no PackageLost yet

    assert not hasattr(events_api_pb2_grpc.EventsAPIServicer, "PackageLost"), (
        "PackageLost is in the repository's protos now: give the README a new event"
    )
    tag = unique("walk")
    consumer, port = f"claims-{tag}", free_port()
    topics = [f"packages.lost.{tag}", f"claims_retry_{tag}", f"claims_dlq_{tag}"]
    replacements = [
        (r"packages\.lost\b", topics[0]), (r"\bclaims_retry\b", topics[1]),
        (r"\bclaims_dlq\b", topics[2]), (r"^(\s*)claims:", rf"\g<1>{consumer}:"),
        (r"\b50070\b", str(port)),
    ]  # fmt: skip
    project = tmp_path / "project"
    shutil.copytree(ROOT / "proto", project / "proto")
    env = dict(os.environ)
    env.update(
        COURIER_BOOTSTRAP_SERVERS=bootstrap_servers,
        COURIER_DATABASE_URL=walk_database,
        PYTHONPATH=os.pathsep.join([str(project / "gen" / "python"), env.get("PYTHONPATH", "")]),
    )
    walk = Walkthrough(project, env, replacements)
    try:
        for block in readme_blocks():
            if block.kind in {"append", "insert-into-service", "file"}:
                walk.apply(block)
            elif block.kind == "shell":
                for line in commands(block):
                    result = walk.run(line)
                    assert result.returncode == 0, f"{line}:\n{result.stdout}{result.stderr}"
                    _after(walk, line, result)
            elif block.kind == "output":
                _check_output(walk, block, tmp_path)
        assert not any(p.poll() is None for p, _ in walk.background)
    finally:
        walk.stop_background()
        _delete_kafka_leftovers(bootstrap_servers, topics, f"courier.{consumer}")


def _after(walk: Walkthrough, line: list[str], result: subprocess.CompletedProcess[str]) -> None:
    """What each step must have done, beyond exiting 0."""
    if line[:3] == ["courier", "schemas", "generate"]:
        probe = (
            "from packages.v1.events_pb2 import PackageLost\n"
            "from packages.v1.events_api_pb2_grpc import EventsAPIServicer\n"
            "from courier.schemas import topic_of\n"
            "assert hasattr(EventsAPIServicer, 'PackageLost')\n"
            "print(PackageLost.__module__, topic_of(PackageLost))\n"
        )
        imported = subprocess.run(
            [sys.executable, "-c", probe], cwd=walk.project, env=walk.env, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        topic = walk.text("packages.lost")
        assert imported.stdout.split() == ["packages.v1.events_pb2", topic]
        generated = walk.project / "gen" / "python" / "packages" / "v1" / "events_pb2.py"
        assert "PackageLost" in generated.read_text()
    elif line[:3] == ["courier", "broker", "check"]:
        assert "ok" in result.stdout.splitlines()[-1], result.stdout


def _check_output(walk: Walkthrough, block: Block, tmp_path: Path) -> None:
    expected = _expected_lines(walk, block)
    if block.args == ("contract-ok",):
        assert walk.last is not None and walk.last.stdout == ""
        assert walk.last.stderr.strip().splitlines() == expected
    elif block.args == ("contract-missing",):
        _check_missing_method(walk, block, tmp_path)
    elif block.args == ("delivered",):
        saved = walk.last.stdout if walk.last is not None else ""
        event_id = re.search(rf"saved event ({UUID})", saved)
        assert event_id, saved
        sample = re.search(UUID, expected[0])
        assert sample, "the README's delivered line shows an event id"
        line = re.escape(expected[0]).replace(re.escape(sample[0]), re.escape(event_id[1]))
        walk.wait_for_output(rf"^{line}$", timeout=30)


def _check_missing_method(walk: Walkthrough, block: Block, tmp_path: Path) -> None:
    """The same command against an older build of the service (no PackageLost) on another port."""
    from packages.v1 import events_api_pb2_grpc

    with build_server(events_api_pb2_grpc.EventsAPIServicer()) as old:  # type: ignore[abstract]
        older = Walkthrough(tmp_path / "older", walk.env, [*walk.replacements[:-1],
                            (r"\b50070\b", str(old.port))])  # fmt: skip
        shutil.copytree(walk.project / "proto", older.project / "proto")
        check = next(
            line for b in readme_blocks() if b.kind == "shell" for line in commands(b)
            if line[:3] == ["courier", "contract", "check"]
        )  # fmt: skip
        config = check[check.index("--config") + 1]
        older.apply(next(b for b in readme_blocks() if b.kind == "file" and b.args == (config,)))
        result = older.run(check)
    expected = _expected_lines(older, block)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == expected[:1]
    assert result.stderr.strip().splitlines() == expected[1:]


def _delete_kafka_leftovers(bootstrap_servers: str, topics: list[str], group: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = [
        *admin.delete_consumer_groups([group], request_timeout=10).values(),
        *admin.delete_topics(topics, operation_timeout=30).values(),
    ]
    for future in futures:
        with contextlib.suppress(Exception):  # best effort: the group may not exist
            future.result()
