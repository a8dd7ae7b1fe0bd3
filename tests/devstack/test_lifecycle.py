"""`courier dev up | status | env | down` on a private stack (own ports and data dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier.devstack import connect
from courier.devstack.config import StackConfig
from courier.devstack.processes import port_is_free

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _courier(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "courier", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture()
def private_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = Path("/var/tmp") / f"courier-dev-test-{os.getpid()}-{_free_port()}"
    env = dict(os.environ)
    env.update(
        COURIER_DEV_DIR=str(data_dir),
        COURIER_DEV_PG_PORT=str(_free_port()),
        COURIER_DEV_KAFKA_PORT=str(_free_port()),
        COURIER_DEV_CONTROLLER_PORT=str(_free_port()),
        COURIER_DEV_CONNECT_PORT=str(_free_port()),
    )
    yield env
    _courier("dev", "down", env=env)
    subprocess.run(["rm", "-rf", str(data_dir)], check=False)


def _stack_pids(data_dir: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", data_dir], capture_output=True, text=True)
    return found.stdout.split()


def test_up_twice_status_env_down(private_env: dict[str, str]) -> None:
    first = _courier("dev", "up", env=private_env)
    assert first.returncode == 0, first.stderr
    second = _courier("dev", "up", env=private_env)
    assert second.returncode == 0, second.stderr
    assert "initdb" not in second.stderr and "starting" not in second.stderr  # a no-op

    status = _courier("dev", "status", env=private_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "postgres.log" in status.stdout and "kafka.log" in status.stdout

    env_out = _courier("dev", "env", env=private_env).stdout
    assert f"COURIER_BOOTSTRAP_SERVERS=127.0.0.1:{private_env['COURIER_DEV_KAFKA_PORT']}" in env_out
    assert f":{private_env['COURIER_DEV_PG_PORT']}/courier" in env_out

    assert _stack_pids(private_env["COURIER_DEV_DIR"]), "no stack process found while up"
    down = _courier("dev", "down", env=private_env)
    assert down.returncode == 0 and "kafka" in down.stderr and "postgres" in down.stderr
    assert _stack_pids(private_env["COURIER_DEV_DIR"]) == []
    assert port_is_free(int(private_env["COURIER_DEV_KAFKA_PORT"]))
    assert port_is_free(int(private_env["COURIER_DEV_PG_PORT"]))

    after = _courier("dev", "status", env=private_env)
    assert after.returncode == 1


def test_taken_port_is_named_not_waited_on(private_env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(private_env["COURIER_DEV_PG_PORT"])))
        blocker.listen()
        result = _courier("dev", "up", env=private_env, timeout=60)
    assert result.returncode == 1
    assert f"port {private_env['COURIER_DEV_PG_PORT']}" in result.stderr
    assert "COURIER_DEV_PG_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_connect_worker_lists_the_debezium_postgres_plugin(connect_stack: StackConfig) -> None:
    assert connect.DEBEZIUM_CONNECTOR_CLASS in connect.plugin_classes(connect_stack)
