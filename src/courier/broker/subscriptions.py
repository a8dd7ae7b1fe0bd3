"""What each Kafka consumer of the broker reads, and the engine timings outside the config."""

from __future__ import annotations

from dataclasses import dataclass

from courier.broker.config import ConsumerConfig


@dataclass(frozen=True)
class LoopSettings:
    """Engine timings that are not part of the broker config."""

    commit_interval: float = 0.5
    revoke_grace: float = 5.0
    shutdown_grace: float = 10.0
    idle_poll: float = 0.1
    max_poll_records: int = 500
    session_timeout_ms: int = 10_000


@dataclass(frozen=True)
class Subscription:
    """What one Kafka consumer reads: its group, distribution topics and retry topic (or not).

    A distribution with ``dedicated: true`` gets a Kafka consumer of its own in a group of
    its own, ``<group>.<topic>``: were it in the service's group, every rebalance of one
    would stop the other, and the group's members would have different subscriptions.
    """

    label: str
    group_id: str
    topics: tuple[str, ...]
    read_retry_topic: bool


def subscriptions(consumer: ConsumerConfig) -> list[Subscription]:
    """The Kafka consumers of one consumer service: the main one (its shared distribution
    topics and its retry topic), then one per dedicated distribution."""
    shared = tuple(d.topic for d in consumer.distribution if not d.dedicated)
    found = [Subscription(consumer.name, consumer.group_id, shared, read_retry_topic=True)]
    for entry in consumer.distribution:
        if entry.dedicated:
            found.append(
                Subscription(
                    f"{consumer.name}/{entry.topic}",
                    f"{consumer.group_id}.{entry.topic}",
                    (entry.topic,),
                    read_retry_topic=False,
                )
            )
    return found
