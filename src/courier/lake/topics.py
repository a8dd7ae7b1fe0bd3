"""Which topics the sink reads.

- ``--topics`` given: those topics. An entry with a glob character (``packages.*``) is a
  pattern matched against the cluster's topics, re-checked as topics appear.
- ``--topics`` not given: every topic of the cluster except
  - internal topics: names starting with ``_`` (``__consumer_offsets``,
    ``__transaction_state``, ``_schemas``, ``_confluent-*``);
  - the retry and DLQ topics of the broker config(s) given with ``--broker-config``;
  - topics matching an ``--exclude`` pattern (fnmatch globs, repeatable).

``--exclude`` applies to ``--topics`` patterns too. Records the broker copied into a retry
or DLQ topic are skipped by default when topics are discovered (see
:func:`courier.lake.records.is_broker_copy`), so a retry topic that escaped these rules
still adds no duplicate; records without CloudEvents headers are *not* skipped -- they land
with ``envelope_error`` set, so a malformed event is never silently lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

INTERNAL_PREFIX = "_"
_GLOB_CHARS = frozenset("*?[")


class TopicConfigError(ValueError):
    """A ``--broker-config`` file cannot be read; the message is ready to print."""


@dataclass(frozen=True)
class TopicSelection:
    """The sink's topic rules; :meth:`choose` applies them to the cluster's topic list."""

    requested: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    broker_topics: frozenset[str] = frozenset()

    @property
    def discovers(self) -> bool:
        """True when no topics were named: the sink follows the cluster's topic list."""
        return not self.requested

    @property
    def needs_metadata(self) -> bool:
        """True when the choice depends on which topics exist."""
        return self.discovers or any(_is_pattern(t) for t in self.requested)

    def choose(self, available: Iterable[str]) -> list[str]:
        """The topics to subscribe to, sorted."""
        existing = set(available)
        if self.discovers:
            chosen = {
                t
                for t in existing
                if not t.startswith(INTERNAL_PREFIX) and t not in self.broker_topics
            }
        else:
            chosen = set()
            for entry in self.requested:
                if _is_pattern(entry):
                    chosen.update(t for t in existing if fnmatchcase(t, entry))
                else:
                    chosen.add(entry)
        return sorted(t for t in chosen if not any(fnmatchcase(t, p) for p in self.exclude))


def split_topics(values: Iterable[str]) -> tuple[str, ...]:
    """``["a,b", "c"]`` -> ``("a", "b", "c")``: flags may repeat or hold comma lists."""
    return tuple(
        dict.fromkeys(part.strip() for value in values for part in value.split(",") if part.strip())
    )


def broker_handoff_topics(paths: Iterable[Path]) -> frozenset[str]:
    """The retry and DLQ topics named by broker config files."""
    from courier.broker.config import ConfigError, load_config

    topics: set[str] = set()
    for path in paths:
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise TopicConfigError(str(exc)) from None
        for topic, roles in config.topic_roles().items():
            if any(role in ("retry", "dlq") for _, role in roles):
                topics.add(topic)
    return frozenset(topics)


def _is_pattern(entry: str) -> bool:
    return any(c in _GLOB_CHARS for c in entry)
