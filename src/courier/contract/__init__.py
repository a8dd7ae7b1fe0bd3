"""Contract checks: does each consumer service serve what the broker configuration promises?

- ``courier contract check`` (`app`, in ``cli``): reach every configured consumer through gRPC
  server reflection and check that each configured method exists, is unary and takes the
  message type its topic carries (from the ``(courier.v1.topic)`` options in ``proto/``);
- :func:`check_contracts` / :func:`check_consumer` (``check``): the same, as a library;
- :func:`describe_server` (``reflection``): a server's services, methods and types;
- :class:`TopicCatalog` (``topics``): topic -> message types, from ``proto/``.
"""

from __future__ import annotations

from courier.contract.check import Problem, check_consumer, check_contracts
from courier.contract.cli import app
from courier.contract.reflection import ReflectionError, RemoteMethod, describe_server
from courier.contract.topics import ProtoError, TopicCatalog

__all__ = [
    "Problem",
    "ProtoError",
    "ReflectionError",
    "RemoteMethod",
    "TopicCatalog",
    "app",
    "check_consumer",
    "check_contracts",
    "describe_server",
]
