"""``courier demo`` end to end on the local stack: it reconciles, and it cleans up after itself.

The demo uses fixed names (the ``courier_demo`` database, the article's topics, the example
services' ports), so these tests run it one at a time and never in parallel with each other.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from courier.devstack.config import StackConfig

pytestmark = pytest.mark.integration

CHILDREN = (
    "examples[.]service_[ab][.]server|examples[.]producer|--slot courier_demo"
    "|broker run --config [^ ]*examples/broker.yaml|{run_dir}"
)


def _children_left(run_dir: Path) -> str:
    """Command lines of the demo's services still running (the demo starts them all with the
    run directory, the slot or an example module on their command line)."""
    found = subprocess.run(
        ["pgrep", "-a", "-f", CHILDREN.format(run_dir=run_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip()


def _demo(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "courier", "demo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run_dir(output: str) -> Path:
    match = re.search(r"demo run (\S+)", output)
    assert match, output
    return Path(match.group(1))


def test_demo_reconciles_every_event_and_stops_its_services(
    stack: StackConfig, courier_env: dict[str, str]
) -> None:
    demo = _demo("--events", "400", "--reject-rate", "0.05", "--timeout", "120", env=courier_env)
    output, _ = demo.communicate(timeout=300)
    assert demo.returncode == 0, output
    assert "every produced event is accounted for" in output
    rows = re.findall(
        r"│ (service-[ab]) +│ (Endpoint[ABC]) +│ ([\w.]+) +│ +(\d+) │ +(\d+) │ +(\d+) │ +(\d+) │",
        output,
    )
    assert len(rows) == 3, output
    for _consumer, _method, _topic, expected, delivered, dead, missing in rows:
        assert int(expected) == 200
        assert int(delivered) + int(dead) == 200
        assert int(missing) == 0
    assert sum(int(row[5]) for row in rows) > 0  # service-b rejects 5%: the DLQ is shown
    lake = re.search(
        r"│ lake sink +│ Parquet +│ all event topics +│ +(\d+) │ +(\d+) │ +│ +(\d+) │", output
    )
    assert lake is not None and lake.groups() == ("400", "400", "0"), output
    endpoints = dict(
        re.findall(
            r"│ (relay|broker|lake sink|service-a|service-b) +│ http://\S+ +│ +\d+ │ +(\d+) │",
            output,
        )
    )
    assert set(endpoints) == {"relay", "broker", "lake sink", "service-a", "service-b"}, output
    assert all(int(nonzero) > 0 for nonzero in endpoints.values()), output
    logs = _run_dir(output)
    assert _children_left(logs) == ""
    assert {p.name for p in logs.glob("*.log")} >= {"relay.log", "broker.log", "service-a.log"}


def test_ctrl_c_stops_everything_the_demo_started(
    stack: StackConfig, courier_env: dict[str, str]
) -> None:
    demo = _demo("--events", "100000", "--rate", "200", env=courier_env)
    assert demo.stdout is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "broker admin page" not in seen and time.monotonic() < deadline:
        seen += demo.stdout.readline()
    time.sleep(8)  # the services are up and events flow
    admin = re.search(r"broker admin page: (http://127.0.0.1:\d+/)", seen)
    assert admin is not None, seen
    with urllib.request.urlopen(admin.group(1) + "api/consumers", timeout=10) as response:
        consumers = json.load(response)
    assert "service-a" in json.dumps(consumers) and "service-b" in json.dumps(consumers)
    running = _children_left(_run_dir(seen))
    for service in ("service_a", "service_b", "producer", "courier_demo", "broker run", "lake"):
        assert service in running, running  # the pattern sees every child while they run
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 130, seen + rest
    assert _children_left(_run_dir(seen)) == ""
