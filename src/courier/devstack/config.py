"""Where the local stack lives and which loopback ports it uses.

Every value has an environment variable so that two checkouts, or a CI run beside a
developer's stack, can run side by side::

    COURIER_DEV_DIR            data, logs and downloaded jars   (/var/tmp/courier-dev)
    COURIER_DEV_PG_PORT        PostgreSQL                       (15432)
    COURIER_DEV_KAFKA_PORT     Kafka broker listener            (19092)
    COURIER_DEV_CONTROLLER_PORT  KRaft controller listener      (19093)
    COURIER_DEV_CONNECT_PORT   Kafka Connect REST               (18083)
    COURIER_DEV_KAFKA_VERSION  Apache Kafka release             (4.3.1)

The data directory is outside the home directory on purpose: PostgreSQL runs as its own
OS user, which must be able to reach its data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/tmp/courier-dev")
DEFAULT_KAFKA_VERSION = "4.3.1"
DEBEZIUM_VERSION = "3.6.1.Final"
DATABASE_NAME = "courier"
DATABASE_USER = "postgres"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class StackConfig:
    """The local stack's settings; ``from_env()`` reads the ``COURIER_DEV_*`` overrides."""

    data_dir: Path = DEFAULT_DATA_DIR
    postgres_port: int = 15432
    kafka_port: int = 19092
    controller_port: int = 19093
    connect_port: int = 18083
    kafka_version: str = DEFAULT_KAFKA_VERSION

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        base = cls()
        return cls(
            data_dir=Path(env.get("COURIER_DEV_DIR", str(base.data_dir))).absolute(),
            postgres_port=int(env.get("COURIER_DEV_PG_PORT", base.postgres_port)),
            kafka_port=int(env.get("COURIER_DEV_KAFKA_PORT", base.kafka_port)),
            controller_port=int(env.get("COURIER_DEV_CONTROLLER_PORT", base.controller_port)),
            connect_port=int(env.get("COURIER_DEV_CONNECT_PORT", base.connect_port)),
            kafka_version=env.get("COURIER_DEV_KAFKA_VERSION", base.kafka_version),
        )

    def with_overrides(self, **changes: object) -> StackConfig:
        """A copy with the given fields changed; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql://{DATABASE_USER}@{HOST}:{self.postgres_port}/{DATABASE_NAME}"

    @property
    def connect_url(self) -> str:
        return f"http://{HOST}:{self.connect_port}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def connect_dir(self) -> Path:
        return self.data_dir / "connect"

    @property
    def kafka_lib_dir(self) -> Path:
        return self.data_dir / "jars" / f"kafka-{self.kafka_version}"

    @property
    def connect_plugins_dir(self) -> Path:
        return self.data_dir / "jars" / f"connect-plugins-{DEBEZIUM_VERSION}"
