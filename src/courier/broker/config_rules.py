"""Rules of the broker configuration that span more than one value.

Each function returns every broken rule as ``(key parts, message)``; the models raise the
first when built from Python, the loader reports them all with their file lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courier.broker.config_schema import ConsumerConfig, MethodRef

Parts = tuple[str | int, ...]
Problem = tuple[Parts, str]

_CONSUMER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def consumer_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a consumer (it becomes the group id ``courier.<name>``)."""
    if not _CONSUMER_NAME.fullmatch(name):
        return (
            "a consumer name may use letters, digits, '.', '_' and '-' (at most 200, starting "
            f"with a letter or digit), got {name!r}"
        )
    return None


def distribution_problems(methods: Sequence[MethodRef]) -> list[Problem]:
    """A distribution entry that lists one method twice."""
    problems: list[Problem] = []
    seen: dict[tuple[str | None, str], int] = {}
    for index, method in enumerate(methods):
        key = (method.service, method.method)
        if key in seen:
            problems.append(
                (("services", index), f'lists "{method}" again (already services[{seen[key]}])')
            )
        else:
            seen[key] = index
    return problems


def consumer_problems(consumer: ConsumerConfig) -> list[Problem]:
    """Rules within one consumer: distinct retry and DLQ topics, each topic listed once."""
    problems: list[Problem] = []
    if consumer.retry_topic == consumer.dlq_topic:
        problems.append(
            (("dlq-topic",), f'must differ from retry-topic (both are "{consumer.dlq_topic}")')
        )
    first: dict[str, int] = {}
    for index, entry in enumerate(consumer.distribution):
        for parts, message in distribution_problems(entry.methods):
            problems.append((("distribution", index, *parts), message))
        if entry.topic in first:
            problems.append(
                (
                    ("distribution", index, "topic"),
                    f'topic "{entry.topic}" is already listed in distribution[{first[entry.topic]}]'
                    " of this consumer; list all its methods in one entry",
                )
            )
        else:
            first.setdefault(entry.topic, index)
    return problems


def broker_problems(consumers: Mapping[str, ConsumerConfig]) -> list[Problem]:
    """Rules across consumers: retry and DLQ topics are each consumer's own.

    A retry or DLQ topic must not be a distribution topic (of any consumer) nor another
    consumer's retry or DLQ topic, and no two topic names may differ only by '.' versus
    '_' (Kafka refuses the second: they collide in its metric names).
    """
    problems: list[Problem] = []
    distributed: dict[str, str] = {}
    for name, consumer in consumers.items():
        for index, topic in enumerate(consumer.topics):
            distributed.setdefault(topic, f"consumers.{name}.distribution[{index}]")
    owners: dict[str, str] = {}
    for name, consumer in consumers.items():
        for key, topic in (
            ("retry-topic", consumer.retry_topic),
            ("dlq-topic", consumer.dlq_topic),
        ):
            where: Parts = ("consumers", name, key)
            if topic in distributed:
                problems.append(
                    (
                        where,
                        f'"{topic}" is a distribution topic ({distributed[topic]}); a {key} '
                        "must be the consumer's own",
                    )
                )
            elif topic in owners and not owners[topic].startswith(f"consumers.{name}."):
                problems.append(
                    (
                        where,
                        f'"{topic}" is already {owners[topic]}; every consumer needs its own '
                        "retry and DLQ topics",
                    )
                )
            owners.setdefault(topic, f"consumers.{name}.{key}")
    problems.extend(_collisions(consumers))
    return problems


def _collisions(consumers: Mapping[str, ConsumerConfig]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name, consumer in consumers.items():
        named: list[tuple[Parts, str]] = [
            (("consumers", name, "distribution", i, "topic"), t)
            for i, t in enumerate(consumer.topics)
        ]
        named += [
            (("consumers", name, "retry-topic"), consumer.retry_topic),
            (("consumers", name, "dlq-topic"), consumer.dlq_topic),
        ]
        for parts, topic in named:
            folded = topic.replace(".", "_")
            other = seen.setdefault(folded, topic)
            if other != topic:
                problems.append(
                    (
                        parts,
                        f'topic "{topic}" collides with "{other}": Kafka treats "." and "_" '
                        "alike in topic metrics and refuses to create both",
                    )
                )
    return problems
