"""Process-wide settings read from the environment (DESIGN.md contract 5).

Every command reads ``COURIER_BOOTSTRAP_SERVERS``, ``COURIER_DATABASE_URL`` and
``COURIER_SERVICE_NAME``; command-line flags override them.
"""

from __future__ import annotations

import os

ENV_BOOTSTRAP_SERVERS = "COURIER_BOOTSTRAP_SERVERS"
ENV_DATABASE_URL = "COURIER_DATABASE_URL"
ENV_SERVICE_NAME = "COURIER_SERVICE_NAME"

DEFAULT_OUTBOX_TABLE = "courier_outbox"


def bootstrap_servers(override: str | None = None) -> str:
    """Kafka bootstrap servers: the flag, else the environment, else the dev stack's default."""
    if override:
        return override
    if value := os.environ.get(ENV_BOOTSTRAP_SERVERS):
        return value
    from courier.devstack.config import StackConfig

    return StackConfig.from_env().bootstrap_servers


def database_url(override: str | None = None) -> str:
    """Database URL (``postgresql://...``): the flag, else the environment, else the dev stack's."""
    if override:
        return override
    if value := os.environ.get(ENV_DATABASE_URL):
        return value
    from courier.devstack.config import StackConfig

    return StackConfig.from_env().database_url


def service_name(override: str | None = None) -> str:
    """The producing service's name, stamped as ``ce_source`` on its events."""
    return override or os.environ.get(ENV_SERVICE_NAME) or "unknown-service"
