"""Check the broker configuration against the consumer servers it names, and against ``proto/``.

For each consumer: reach its gRPC server, list its methods through reflection, and check that
every configured method exists, is unary, and takes the message type its topic carries. Each
problem is one :class:`Problem` (one line); a consumer that cannot be reached is one problem,
after a bounded wait. Consumers are checked in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from courier.contract.reflection import (
    ReflectionError,
    RemoteMethod,
    ServerMethods,
    describe_server,
)
from courier.contract.topics import TopicCatalog


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one consumer, printed as ``<consumer>: <message>``."""

    consumer: str
    message: str
    warning: bool = False  # cannot be checked, but not known to be wrong

    def __str__(self) -> str:
        return f"{self.consumer}: {self.message}"


def check_contracts(
    consumers: Iterable[Any], catalog: TopicCatalog, *, timeout: float = 5.0
) -> list[Problem]:
    """Problems of every consumer (``ConsumerConfig``-like objects), in configuration order."""
    consumers = list(consumers)
    if not consumers:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(consumers))) as pool:
        results = pool.map(lambda c: check_consumer(c, catalog, timeout=timeout), consumers)
        return [problem for problems in results for problem in problems]


def check_consumer(consumer: Any, catalog: TopicCatalog, *, timeout: float = 5.0) -> list[Problem]:
    """Problems of one consumer: its server against its distribution entries and the topics.

    ``consumer`` needs ``name``, ``target`` and ``distribution`` (entries with ``topic`` and
    ``methods``, each with ``service`` (or None) and ``method``); ``tls`` is used when set.
    """
    name = consumer.name
    try:
        server = describe_server(consumer.target, timeout=timeout, **_tls_options(consumer))
    except ReflectionError as exc:
        return [Problem(name, str(exc))]
    except OSError as exc:  # unreadable TLS files
        return [Problem(name, f"cannot connect to {consumer.target}: {exc}")]
    problems: list[Problem] = []
    for entry in consumer.distribution:
        expected = catalog.types_for(entry.topic)
        if not expected:
            problems.append(
                Problem(
                    name,
                    f"topic {entry.topic}: no message in the protos declares "
                    f'option (courier.v1.topic) = "{entry.topic}"; request types not checked',
                    warning=True,
                )
            )
        for ref in entry.methods:
            found = _find_method(name, consumer.target, server, ref.service, ref.method)
            if isinstance(found, Problem):
                problems.append(found)
                continue
            problems.extend(_type_problems(name, str(ref), found, entry.topic, expected))
    return _unique(problems)


def _find_method(
    consumer: str, target: str, server: ServerMethods, service: str | None, method: str
) -> RemoteMethod | Problem:
    listed = ", ".join(sorted(server)) or "none"
    if service is None:
        owners = [s for s, methods in server.items() if method in methods]
        if len(owners) == 1:
            return server[owners[0]][method]
        if owners:
            return Problem(
                consumer,
                f"method {method} is ambiguous on {target}: served by {', '.join(owners)} "
                "(write Service/Method or set grpc-service)",
            )
        return Problem(consumer, f"method {method} not found on {target} (services: {listed})")
    if service not in server:
        return Problem(
            consumer, f"method {service}/{method} not found on {target} (services: {listed})"
        )
    if method not in server[service]:
        known = ", ".join(sorted(server[service])) or "none"
        return Problem(
            consumer,
            f"method {service}/{method} not found on {target} (methods of {service}: {known})",
        )
    return server[service][method]


def _type_problems(
    consumer: str, written: str, method: RemoteMethod, topic: str, expected: frozenset[str]
) -> list[Problem]:
    if method.client_streaming or method.server_streaming:
        return [Problem(consumer, f"{written} is a streaming method; Courier makes unary calls")]
    if not expected:
        return []
    carried = ", ".join(sorted(expected))
    if method.input_type not in expected:
        return [
            Problem(
                consumer, f"{written} takes {method.input_type} but topic {topic} carries {carried}"
            )
        ]
    if len(expected) > 1:
        return [
            Problem(
                consumer,
                f"{written} takes {method.input_type} but topic {topic} carries several types "
                f"({carried}); every event of the topic reaches the method",
            )
        ]
    return []


def _tls_options(consumer: Any) -> dict[str, Any]:
    tls = getattr(consumer, "tls", None)
    if tls is None:
        return {}

    def read(path: Path | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(getattr(tls, "ca_file", None)),
        private_key=read(getattr(tls, "key_file", None)),
        certificate_chain=read(getattr(tls, "cert_file", None)),
    )
    return {"credentials": credentials, "server_name": getattr(tls, "server_name", None)}


def _unique(problems: Sequence[Problem]) -> list[Problem]:
    seen: set[str] = set()
    kept = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            kept.append(problem)
    return kept
