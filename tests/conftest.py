"""Shared fixtures. Integration tests use the real local stack (``courier dev up``).

The ``stack`` fixture brings the stack up through the same code as ``courier dev up``, or
reuses one that already answers, and fails with a clear message if it cannot.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from courier.devstack import connect
from courier.devstack import stack as devstack
from courier.devstack.config import StackConfig
from courier.devstack.processes import StackError


def _progress(message: str) -> None:
    print(f"[dev] {message}", flush=True)


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return StackConfig.from_env()


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig) -> StackConfig:
    """The running local stack (Postgres + Kafka), started if needed."""
    try:
        devstack.up(stack_config, with_connect=False, progress=_progress)
    except StackError as exc:
        pytest.fail(f"the local stack could not be brought up: {exc}", pytrace=False)
    return stack_config


@pytest.fixture(scope="session")
def connect_stack(stack: StackConfig) -> StackConfig:
    """The local stack plus the Kafka Connect worker with the Debezium plugin."""
    try:
        connect.start(stack, _progress)
    except StackError as exc:
        pytest.fail(f"Kafka Connect could not be brought up: {exc}", pytrace=False)
    return stack


@pytest.fixture(scope="session")
def bootstrap_servers(stack: StackConfig) -> str:
    return stack.bootstrap_servers


@pytest.fixture(scope="session")
def database_url(stack: StackConfig) -> str:
    return stack.database_url


@pytest.fixture()
def unique() -> Callable[[str], str]:
    """``unique("orders")`` -> ``"orders_k3f9a2"``: names that no other test or run uses."""
    suffix = secrets.token_hex(3)

    def make(prefix: str = "t") -> str:
        return f"{prefix}_{suffix}"

    return make


@pytest.fixture()
def courier_env(stack: StackConfig) -> Iterator[dict[str, str]]:
    """Environment for ``courier`` subprocesses pointed at the local stack."""
    env = dict(os.environ)
    env["COURIER_BOOTSTRAP_SERVERS"] = stack.bootstrap_servers
    env["COURIER_DATABASE_URL"] = stack.database_url
    yield env
