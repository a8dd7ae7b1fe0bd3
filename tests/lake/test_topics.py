"""Which topics the sink reads by default, and what --topics / --exclude / --broker-config do."""

from __future__ import annotations

from pathlib import Path

import pytest

from courier.lake.topics import (
    TopicConfigError,
    TopicSelection,
    broker_handoff_topics,
    split_topics,
)

CLUSTER = [
    "__consumer_offsets", "__transaction_state", "_schemas", "packages.created",
    "packages.delivered", "billing.invoices", "svc_a_retry", "svc_a_dlq", "scratch.tmp",
]  # fmt: skip


def test_by_default_every_non_internal_topic() -> None:
    chosen = TopicSelection().choose(CLUSTER)
    assert chosen == [
        "billing.invoices", "packages.created", "packages.delivered", "scratch.tmp",
        "svc_a_dlq", "svc_a_retry",
    ]  # fmt: skip


def test_broker_handoff_topics_and_excludes_are_left_out() -> None:
    selection = TopicSelection(
        exclude=("scratch.*",), broker_topics=frozenset({"svc_a_retry", "svc_a_dlq"})
    )
    assert selection.choose(CLUSTER) == [
        "billing.invoices",
        "packages.created",
        "packages.delivered",
    ]
    assert selection.discovers and selection.needs_metadata


def test_named_topics_are_taken_as_given_and_globs_match_the_cluster() -> None:
    named = TopicSelection(requested=("packages.delivered", "not.yet.created"))
    assert named.choose(CLUSTER) == ["not.yet.created", "packages.delivered"]
    assert not named.discovers and not named.needs_metadata
    globbed = TopicSelection(requested=("packages.*",), exclude=("*.created",))
    assert globbed.choose(CLUSTER) == ["packages.delivered"]
    assert globbed.needs_metadata


def test_flags_may_repeat_or_hold_comma_lists() -> None:
    assert split_topics(["a,b", " c ", "a", ""]) == ("a", "b", "c")


def test_broker_config_names_its_retry_and_dlq_topics(tmp_path: Path) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text(
        """
consumers:
  service-a:
    grpc-server-hostname: "localhost"
    grpc-server-port: "12345"
    grpc-service: "pkg.v1.Svc"
    max-retry-attempts: 3
    batch-size: 10
    retry-topic: "service_a_retry"
    dlq-topic: "service_a_dlq"
    distribution:
      - topic: "event_y"
        services: ["EndpointA"]
"""
    )
    assert broker_handoff_topics([config]) == {"service_a_retry", "service_a_dlq"}


def test_a_broken_broker_config_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text("consumers: [1, 2\n")
    with pytest.raises(TopicConfigError, match=r"broker\.yaml"):
        broker_handoff_topics([config])
