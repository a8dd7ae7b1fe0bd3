"""The demo's ground: its own database, fresh topics and consumer groups, free ports."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg2
from confluent_kafka.admin import AdminClient

from courier.broker.config import BrokerConfig, load_config
from courier.broker.topics import ensure_topics
from courier.devstack.config import DATABASE_USER, HOST, StackConfig
from courier.devstack.processes import StackError

DATABASE = "courier_demo"
LAKE_GROUP = "courier.demo.lake"


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "examples" / "broker.yaml").exists():
            return candidate
    raise StackError("courier demo runs from a checkout: examples/broker.yaml was not found")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel has free now (all held open at once, then freed)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass
class DemoLayout:
    """Paths, names and ports of one demo run."""

    repo: Path
    run_dir: Path
    slot: str = "courier_demo"
    tables: dict[str, str] = field(
        default_factory=lambda: {
            "service-a": "service_a_received",
            "service-b": "service_b_received",
        }
    )
    ports: dict[str, int] = field(default_factory=dict)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @classmethod
    def create(cls, config: StackConfig) -> DemoLayout:
        run_dir = config.data_dir / "demo" / datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir.mkdir(parents=True, exist_ok=True)
        layout = cls(repo=_repo_root(), run_dir=run_dir)
        names = (
            "service-a",
            "service-b",
            "service-a-metrics",
            "service-b-metrics",
            "relay-metrics",
            "broker-metrics",
            "lake-metrics",
            "broker-admin",
        )
        layout.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        return layout

    @property
    def lake_dir(self) -> Path:
        return self.run_dir / "lake"

    @property
    def broker_yaml(self) -> Path:
        return self.repo / "examples" / "broker.yaml"

    @property
    def ids_file(self) -> Path:
        return self.run_dir / "produced.jsonl"

    def broker_config(self) -> BrokerConfig:
        return load_config(self.broker_yaml, environ={**os.environ, **self.service_ports_env()})

    def service_ports_env(self) -> dict[str, str]:
        """The example services' ports, as examples/broker.yaml reads them."""
        return {
            "SERVICE_A_PORT": str(self.ports["service-a"]),
            "SERVICE_B_PORT": str(self.ports["service-b"]),
        }

    def database_url(self, config: StackConfig) -> str:
        return f"postgresql://{DATABASE_USER}@{HOST}:{config.postgres_port}/{DATABASE}"

    def env(self, config: StackConfig) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            COURIER_BOOTSTRAP_SERVERS=config.bootstrap_servers,
            COURIER_DATABASE_URL=self.database_url(config),
            COURIER_SERVICE_NAME="package-service",
            **self.service_ports_env(),
            PYTHONPATH=os.pathsep.join(filter(None, [str(self.repo), env.get("PYTHONPATH")])),
        )
        return env


def prepare_database(config: StackConfig, layout: DemoLayout) -> None:
    """A fresh ``courier_demo`` database with the producer's tables (Django migrations)."""
    admin = psycopg2.connect(
        host=HOST, port=config.postgres_port, user=DATABASE_USER, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s AND NOT active",
            (DATABASE,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{DATABASE}"')
    admin.close()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.producer.produce",
            "--events",
            "0",
            "--migrate",
            "--ids-out",
            os.devnull,
        ],
        cwd=layout.repo,
        env=layout.env(config),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"the producer's migrations failed: {result.stderr.strip()[-600:]}")


def reset_kafka(config: StackConfig, broker: BrokerConfig) -> None:
    """Delete the demo's topics and consumer groups from earlier runs, then create the topics."""
    admin = AdminClient({"bootstrap.servers": config.bootstrap_servers})
    topics = sorted(broker.topic_roles())
    groups = [*(c.group_id for c in broker.consumers.values()), LAKE_GROUP]
    existing = set(admin.list_topics(timeout=10).topics)
    for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
        with contextlib.suppress(Exception):  # a group that does not exist yet is fine
            future.result()
    doomed = [t for t in topics if t in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            future.result()
    _wait_until_gone(admin, doomed)
    ensure_topics(admin, broker)


def _wait_until_gone(admin: AdminClient, topics: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while topics and time.monotonic() < deadline:
        present = set(admin.list_topics(timeout=10).topics)
        if not present & set(topics):
            return
        time.sleep(0.5)
