# ruff: noqa: E501  (the malformed-config table reads best one case per line)
"""Broker config: the article's YAML loads; every malformed file gets one line naming the key.

Each malformed case is the article's configuration (tests/broker/data/article.yaml) with one
defect, and expects exactly one problem, formatted as ``broker.yaml:<line>: <key path>: ...``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from courier.broker.config import (
    BrokerConfig,
    ConfigError,
    ConsumerConfig,
    Distribution,
    MethodRef,
    RetryPolicy,
    UnresolvedMethodError,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from courier.broker.config_yaml import read_yaml

DATA = Path(__file__).parent / "data"
ARTICLE = (DATA / "article.yaml").read_text()
SOURCE = "broker.yaml"


def article(old: str, new: str, count: int = 1) -> str:
    """The article's YAML with ``old`` replaced by ``new`` (``old`` must occur ``count`` times)."""
    assert ARTICLE.count(old) == count, old
    return ARTICLE.replace(old, new)


def problems_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SOURCE, **kwargs)  # type: ignore[arg-type]
    lines = info.value.lines()
    assert str(info.value) == "\n".join(lines)
    for line in lines:
        assert "\n" not in line and "Traceback" not in line
    return lines


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    prefix: str  # "broker.yaml:<line>: <key path>:" the problem must start with
    fragment: str  # and contain


TOO_LONG = "t" * 250
# fmt: off
CASES = [
    # --- YAML itself
    Case("unclosed-quote", article('"service-b-hostname"', '"service-b-hostname'), "broker.yaml:16:", "invalid YAML: expected <block end>"),
    Case("tab-indent", article("    batch-size: 10", "\tbatch-size: 10"), "broker.yaml:6:", "invalid YAML"),
    Case("unclosed-flow-list", article('services:\n          - "EndpointC"', "services: [EndpointC"), "broker.yaml:24:", "(while parsing a flow sequence started on line 23)"),
    Case("mapping-in-scalar", article("batch-size: 10", "batch-size: 10: 3"), "broker.yaml:6:", "mapping values are not allowed here"),
    Case("bad-indentation", article('    dlq-topic: "service_a_dlq"', '      dlq-topic: "service_a_dlq"'), "broker.yaml:8:", "invalid YAML"),
    Case("two-documents", ARTICLE + "---\nconsumers: {}\n", "broker.yaml:25:", "expected a single document"),
    Case("empty-file", "", "broker.yaml:1:", "the file is empty"),
    Case("only-comments", "# nothing here\n", "broker.yaml:1:", "the file is empty"),
    Case("top-level-list", "- consumers\n", "broker.yaml:1:", "the top level must be a mapping"),
    Case("top-level-scalar", "consumers\n", "broker.yaml:1:", "the top level must be a mapping"),
    Case("python-tag", article("batch-size: 10", "batch-size: !!python/object:os.system ls"), "broker.yaml:6: consumers.service-a.batch-size:", "invalid value"),
    Case("custom-tag-on-mapping", article("  service-b:\n", "  service-b: !secret\n"), "broker.yaml:14: consumers.service-b:", "unsupported YAML tag !secret"),
    Case("complex-key", article("    batch-size: 10\n", "    ? [a, b]\n    : 1\n    batch-size: 10\n"), "broker.yaml:6: consumers.service-a:", "mapping keys must be plain strings"),
    # --- structure and keys
    Case("missing-consumers", "defaults:\n  batch-size: 3\n", "broker.yaml:1: consumers:", "required key missing"),
    Case("empty-consumers", "consumers: {}\n", "broker.yaml:1: consumers:", "got an empty mapping"),
    Case("consumers-list", "consumers:\n  - service-a\n", "broker.yaml:1: consumers:", "got a list" ),
    Case("unknown-top-key", "consumer:\n  x: 1\n" + ARTICLE, "broker.yaml:1: consumer:", 'did you mean "consumers"?'),
    Case("unknown-consumer-key", article("batch-size: 10", "batch-size: 10\n    batch-sise: 3"), "broker.yaml:7: consumers.service-a.batch-sise:", 'unknown key "batch-sise"; did you mean "batch-size"?'),
    Case("unknown-key-no-match", article("batch-size: 10", "batch-size: 10\n    zzz: 3"), "broker.yaml:7: consumers.service-a.zzz:", "expected one of:"),
    Case("name-key", article("batch-size: 10", "batch-size: 10\n    name: a"), "broker.yaml:7: consumers.service-a.name:", "the consumer's name is its key"),
    Case("consumer-not-mapping", "consumers:\n  service-a: 5\n", "broker.yaml:2: consumers.service-a:", "must be a mapping of consumer settings, got 5"),
    Case("consumer-name-space", article("  service-b:", '  "service b":'), 'broker.yaml:14: consumers."service b":', "a consumer name may use letters"),
    Case("duplicate-consumer", article("  service-b:", "  service-a:"), "broker.yaml:14: consumers.service-a:", 'duplicate consumer "service-a" (first defined on line 2)'),
    Case("duplicate-key", article("    batch-size: 10\n", "    batch-size: 10\n    batch-size: 11\n"), "broker.yaml:7: consumers.service-a.batch-size:", "duplicate key"),
    Case("missing-retry-topic", article('    retry-topic: "service_a_retry"\n', ""), "broker.yaml:2: consumers.service-a.retry-topic:", "required key missing"),
    Case("missing-port", article('    grpc-server-port: "54321"\n', ""), "broker.yaml:14: consumers.service-b.grpc-server-port:", "required key missing"),
    Case("missing-distribution", article('    distribution:\n      - topic: "event_x"\n        services:\n          - "EndpointC"\n', ""), "broker.yaml:14: consumers.service-b.distribution:", "required key missing"),
    Case("missing-topic", article('      - topic: "event_y"\n        services:', "      - services:"), "broker.yaml:10: consumers.service-a.distribution[0].topic:", "required key missing"),
    Case("missing-services", article('      - topic: "event_x"\n        services:\n          - "EndpointC"\n', '      - topic: "event_x"\n'), "broker.yaml:22: consumers.service-b.distribution[0].services:", "required key missing"),
    Case("distribution-mapping", article('    distribution:\n      - topic: "event_x"\n        services:\n          - "EndpointC"\n', "    distribution:\n      topic: event_x\n"), "broker.yaml:21: consumers.service-b.distribution:", "must be a list of distribution entries, got a mapping"),
    Case("distribution-empty", article('    distribution:\n      - topic: "event_x"\n        services:\n          - "EndpointC"\n', "    distribution: []\n"), "broker.yaml:21: consumers.service-b.distribution:", "must not be empty"),
    Case("distribution-entry-string", article('      - topic: "event_x"\n        services:\n          - "EndpointC"\n', "      - event_x\n"), "broker.yaml:22: consumers.service-b.distribution[0]:", 'must be a mapping, got "event_x"'),
    Case("distribution-unknown-key", article('      - topic: "event_x"', '      - topic: "event_x"\n        dedicate: true'), "broker.yaml:23: consumers.service-b.distribution[0].dedicate:", 'did you mean "dedicated"?'),
    # --- values
    Case("port-abc", article('"12345"', '"abc"'), "broker.yaml:4: consumers.service-a.grpc-server-port:", 'must be an integer port 1-65535, got "abc"'),
    Case("port-zero", article('"12345"', "0"), "broker.yaml:4: consumers.service-a.grpc-server-port:", "got 0"),
    Case("port-too-big", article('"54321"', "70000"), "broker.yaml:16: consumers.service-b.grpc-server-port:", "must be an integer port 1-65535, got 70000"),
    Case("port-bool", article('"12345"', "true"), "broker.yaml:4: consumers.service-a.grpc-server-port:", "got true"),
    Case("port-fraction", article('"12345"', "123.5"), "broker.yaml:4: consumers.service-a.grpc-server-port:", "got 123.5"),
    Case("port-empty", article(' "12345"', ""), "broker.yaml:4: consumers.service-a.grpc-server-port:", "got an empty value"),
    Case("host-url", article('"service-a-hostname"', '"http://service-a:80"'), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "must be a hostname or IP address"),
    Case("host-empty", article('"service-a-hostname"', '""'), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "must be a hostname or IP address"),
    Case("host-list", article('"service-a-hostname"', "[a, b]"), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "got a list"),
    Case("retries-negative", article("max-retry-attempts: 15", "max-retry-attempts: -1"), "broker.yaml:5: consumers.service-a.max-retry-attempts:", "must be an integer >= 0, got -1"),
    Case("retries-word", article("max-retry-attempts: 5", "max-retry-attempts: many"), "broker.yaml:17: consumers.service-b.max-retry-attempts:", 'got "many"'),
    Case("batch-zero", article("batch-size: 10", "batch-size: 0"), "broker.yaml:6: consumers.service-a.batch-size:", "must be a positive integer, got 0"),
    Case("batch-list", article("batch-size: 5", "batch-size: [5]"), "broker.yaml:18: consumers.service-b.batch-size:", "got a list"),
    Case("topic-space", article('"event_y"', '"event y"'), "broker.yaml:10: consumers.service-a.distribution[0].topic:", "may use only letters, digits"),
    Case("topic-dotdot", article('"event_y"', '".."'), "broker.yaml:10: consumers.service-a.distribution[0].topic:", 'must not be "." or ".."'),
    Case("topic-too-long", article('"event_y"', f'"{TOO_LONG}"'), "broker.yaml:10: consumers.service-a.distribution[0].topic:", "at most 249 characters, got 250"),
    Case("topic-slash", article('"service_a_dlq"', '"service/a/dlq"'), "broker.yaml:8: consumers.service-a.dlq-topic:", "may use only letters"),
    Case("topic-internal", article('"service_b_retry"', '"__consumer_offsets"'), "broker.yaml:19: consumers.service-b.retry-topic:", "reserved for Kafka's internal topics"),
    Case("topic-number", article('"event_x"', "42"), "broker.yaml:22: consumers.service-b.distribution[0].topic:", 'got 42 (quote it: "42")'),
    Case("retry-equals-dlq", article('"service_a_dlq"', '"service_a_retry"'), "broker.yaml:8: consumers.service-a.dlq-topic:", 'must differ from retry-topic (both are "service_a_retry")'),
    Case("retry-is-distribution", article('"service_b_retry"', '"event_y"'), "broker.yaml:19: consumers.service-b.retry-topic:", "is a distribution topic (consumers.service-a.distribution[0])"),
    Case("dlq-shared", article('"service_b_dlq"', '"service_a_dlq"'), "broker.yaml:20: consumers.service-b.dlq-topic:", "is already consumers.service-a.dlq-topic"),
    Case("topic-collision", article('"service_b_dlq"', '"service.b.dlq"').replace('"service_a_dlq"', '"service_b_dlq"'), "broker.yaml:20: consumers.service-b.dlq-topic:", 'collides with "service_b_dlq"'),
    Case("duplicate-topic", article('          - "EndpointB"\n', '          - "EndpointB"\n      - topic: "event_y"\n        services: [EndpointC]\n'), "broker.yaml:14: consumers.service-a.distribution[1].topic:", "already listed in distribution[0]"),
    Case("services-empty", article('services:\n          - "EndpointC"', "services: []"), "broker.yaml:23: consumers.service-b.distribution[0].services:", "must not be empty"),
    Case("services-string", article('services:\n          - "EndpointC"', "services: EndpointC"), "broker.yaml:23: consumers.service-b.distribution[0].services:", 'must be a list of gRPC methods, got "EndpointC"'),
    Case("method-three-parts", article('"EndpointC"', '"a.B/C/D"'), "broker.yaml:24: consumers.service-b.distribution[0].services[0]:", "must be a gRPC method"),
    Case("method-dash", article('"EndpointA"', '"Endpoint-A"'), "broker.yaml:12: consumers.service-a.distribution[0].services[0]:", 'got "Endpoint-A"'),
    Case("method-bad-service", article('"EndpointA"', '"pkg..Svc/EndpointA"'), "broker.yaml:12: consumers.service-a.distribution[0].services[0]:", "must be a gRPC method"),
    Case("method-duplicate", article('"EndpointB"', '"EndpointA"'), "broker.yaml:13: consumers.service-a.distribution[0].services[1]:", 'lists "EndpointA" again (already services[0])'),
    Case("ordering-bad", article('      - topic: "event_x"', '      - topic: "event_x"\n        ordering: keys'), "broker.yaml:23: consumers.service-b.distribution[0].ordering:", 'must be "none" or "key", got "keys"'),
    Case("dedicated-bad", article('      - topic: "event_x"', '      - topic: "event_x"\n        dedicated: maybe'), "broker.yaml:23: consumers.service-b.distribution[0].dedicated:", 'must be true or false, got "maybe"'),
    Case("grpc-service-bad", article("batch-size: 5", 'batch-size: 5\n    grpc-service: "events v1"'), "broker.yaml:19: consumers.service-b.grpc-service:", 'must be a gRPC service name like "package.v1.Service"'),
    Case("timeout-word", article("batch-size: 5", "batch-size: 5\n    call-timeout: soon"), "broker.yaml:19: consumers.service-b.call-timeout:", 'must be a duration (seconds as a number, or a string like "250ms", "2s", "1m"), got "soon"'),
    Case("timeout-zero", article("batch-size: 5", "batch-size: 5\n    call-timeout: 0ms"), "broker.yaml:19: consumers.service-b.call-timeout:", "must be a duration greater than 0"),
    Case("retry-attempts-negative", article("batch-size: 5", "batch-size: 5\n    in-memory-retry: {attempts: -2}"), "broker.yaml:19: consumers.service-b.in-memory-retry.attempts:", "got -2"),
    Case("retry-typo", article("batch-size: 5", "batch-size: 5\n    in-memory-retry:\n      base-backof: 1s"), "broker.yaml:20: consumers.service-b.in-memory-retry.base-backof:", 'did you mean "base-backoff"?'),
    Case("retry-max-below-base", article("batch-size: 5", "batch-size: 5\n    in-memory-retry: {base-backoff: 2s, max-backoff: 500ms}"), "broker.yaml:19: consumers.service-b.in-memory-retry:", "max-backoff (0.5s) must not be smaller than base-backoff (2.0s)"),
    Case("jitter-too-big", article("batch-size: 5", "batch-size: 5\n    in-memory-retry: {jitter: 1.5}"), "broker.yaml:19: consumers.service-b.in-memory-retry.jitter:", "must be a number from 0 to 1, got 1.5"),
    Case("breaker-not-mapping", article("batch-size: 5", "batch-size: 5\n    circuit-breaker: 5"), "broker.yaml:19: consumers.service-b.circuit-breaker:", "must be a mapping, got 5"),
    Case("breaker-threshold-zero", article("batch-size: 5", "batch-size: 5\n    circuit-breaker: {failure-threshold: 0}"), "broker.yaml:19: consumers.service-b.circuit-breaker.failure-threshold:", "must be a positive integer"),
    Case("delays-empty", article("batch-size: 5", "batch-size: 5\n    retry-delays: []"), "broker.yaml:19: consumers.service-b.retry-delays:", "must not be empty"),
    Case("delays-bad-item", article("batch-size: 5", "batch-size: 5\n    retry-delays: [1s, -2s]"), "broker.yaml:19: consumers.service-b.retry-delays[1]:", 'got "-2s"'),
    Case("tls-missing-file", article("batch-size: 5", "batch-size: 5\n    tls: {ca-file: no-such-ca.pem}"), "broker.yaml:19: consumers.service-b.tls.ca-file:", 'file not found: "no-such-ca.pem"'),
    Case("tls-cert-without-key", article("batch-size: 5", f"batch-size: 5\n    tls: {{cert-file: {DATA / 'article.yaml'}}}"), "broker.yaml:19: consumers.service-b.tls:", "cert-file and key-file go together"),
    # --- environment, defaults, topics
    Case("env-unset", article('"service-a-hostname"', '"${COURIER_TEST_SURELY_UNSET}"'), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "environment variable COURIER_TEST_SURELY_UNSET is not set"),
    Case("env-malformed", article('"service-a-hostname"', '"${1HOST}"'), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "malformed reference ${1HOST}"),
    Case("env-unterminated", article('"service-a-hostname"', '"${HOST"'), "broker.yaml:3: consumers.service-a.grpc-server-hostname:", "unterminated ${...}"),
    Case("env-bad-port", article('"12345"', '"${COURIER_TEST_SURELY_UNSET:-12a}"'), "broker.yaml:4: consumers.service-a.grpc-server-port:", 'got "12a"'),
    Case("defaults-unknown", "defaults:\n  batchsize: 3\n" + ARTICLE, "broker.yaml:2: defaults.batchsize:", 'did you mean "batch-size"?'),
    Case("defaults-topic", "defaults:\n  dlq-topic: dlq\n" + ARTICLE, "broker.yaml:2: defaults.dlq-topic:", "cannot have a default"),
    Case("defaults-bad-value", "defaults:\n  call-timeout: -1\n" + ARTICLE, "broker.yaml:2: defaults.call-timeout:", "must be a duration greater than 0, got -1"),
    Case("defaults-not-mapping", "defaults: 3\n" + ARTICLE, "broker.yaml:1: defaults:", "must be a mapping, got 3"),
    Case("topics-partitions", "topics:\n  partitions: 0\n" + ARTICLE, "broker.yaml:2: topics.partitions:", "must be a positive integer, got 0"),
    Case("topics-unknown", "topics:\n  replication: 3\n" + ARTICLE, "broker.yaml:2: topics.replication:", 'did you mean "replication-factor"?'),
    Case("merge-not-mapping", article("  service-b:\n", "  service-b:\n    <<: 5\n"), "broker.yaml:15: consumers.service-b:", "a merge key (<<) needs a mapping"),
]
# fmt: on


def test_there_are_at_least_forty_distinct_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.text for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_config_is_one_line_naming_key_and_line(case: Case) -> None:
    lines = problems_of(case.text, environ={"HOME": "/nonexistent"}, base_dir=DATA)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith(case.prefix + (" " if case.prefix.endswith(":") else "")), line
    assert case.fragment in line, line


def test_all_problems_of_a_file_are_reported_together() -> None:
    text = article('"12345"', '"abc"')
    text = text.replace("batch-size: 5", "batch-size: 0").replace('"EndpointC"', '"a/b/c"')
    lines = problems_of(text)
    assert [line.split(":")[1] for line in lines] == ["4", "18", "24"]


# --- the article, and what the loader gives the delivery engine ------------------------------


def test_article_config_loads_as_written() -> None:
    config = load_config(DATA / "article.yaml")
    assert list(config.consumers) == ["service-a", "service-b"]
    a, b = config.consumers["service-a"], config.consumers["service-b"]
    assert (a.host, a.port, a.max_retry_attempts, a.batch_size) == (
        "service-a-hostname",
        12345,
        15,
        10,
    )
    assert (a.retry_topic, a.dlq_topic, a.topics) == (
        "service_a_retry",
        "service_a_dlq",
        ("event_y",),
    )
    assert [m.method for m in a.methods_for("event_y")] == ["EndpointA", "EndpointB"]
    assert all(m.service is None for m in a.methods_for("event_y"))
    assert (b.port, b.max_retry_attempts, b.batch_size, b.topics) == (54321, 5, 5, ("event_x",))
    assert (a.group_id, b.target) == ("courier.service-a", "service-b-hostname:54321")
    assert config.source_path == (DATA / "article.yaml").resolve()
    # defaults for the keys the article does not set
    assert a.call_timeout == 10.0 and a.retry == RetryPolicy() and a.tls is None
    assert a.retry_delays == (1.0, 5.0, 30.0, 120.0, 600.0)
    assert a.breaker.enabled and a.breaker.failure_threshold == 5
    assert a.distribution[0].dedicated is False and a.distribution[0].ordering == "none"
    with pytest.raises(KeyError):
        a.methods_for("event_x")


def test_examples_broker_yaml_loads() -> None:
    examples = Path(__file__).parents[2] / "examples" / "broker.yaml"
    config = load_config(examples)
    assert config.consumers["service-b"].retry_delays == (0.5, 1.0, 2.0)


def test_method_resolution_grpc_service_and_defaults() -> None:
    text = (
        "defaults:\n  grpc-service: events.v1.EventsAPI\n  call-timeout: 250ms\n"
        + article(
            "batch-size: 5", "batch-size: 5\n    grpc-service: other.v2.Api\n    call-timeout: 3s"
        )
    ).replace('"EndpointB"', '"explicit.v1.Svc/EndpointB"')
    config = parse_config(text)
    a, b = config.consumers["service-a"], config.consumers["service-b"]
    assert [m.path for m in a.methods_for("event_y")] == [
        "/events.v1.EventsAPI/EndpointA",
        "/explicit.v1.Svc/EndpointB",
    ]
    assert [m.path for m in b.methods_for("event_x")] == ["/other.v2.Api/EndpointC"]
    assert (a.call_timeout, b.call_timeout) == (0.25, 3.0)


def test_unresolved_method_path_raises_until_resolved() -> None:
    method = MethodRef.model_validate("EndpointA")
    with pytest.raises(UnresolvedMethodError, match="EndpointA"):
        _ = method.path
    assert method.with_service("a.v1.Svc").path == "/a.v1.Svc/EndpointA"
    assert MethodRef.model_validate("/a.Svc/M").path == "/a.Svc/M"


def test_defaults_merge_mappings_key_by_key_and_report_once() -> None:
    text = "defaults:\n  in-memory-retry: {attempts: 7, jitter: 0}\n  batch-size: 3\n" + article(
        "batch-size: 5\n", "in-memory-retry: {attempts: 1}\n"
    )
    config = parse_config(text)
    a, b = config.consumers["service-a"], config.consumers["service-b"]
    assert (a.retry.attempts, a.retry.jitter, a.batch_size) == (7, 0.0, 10)
    assert (b.retry.attempts, b.retry.jitter, b.batch_size) == (1, 0.0, 3)
    bad = "defaults:\n  in-memory-retry: {attempts: x}\n" + ARTICLE
    assert len(problems_of(bad)) == 1  # under defaults, not once more per consumer


def test_yaml_anchors_and_merge_keys() -> None:
    text = """
consumers:
  service-a: &common
    grpc-server-hostname: localhost
    grpc-server-port: 1
    max-retry-attempts: 1
    batch-size: 1
    retry-topic: a_retry
    dlq-topic: a_dlq
    distribution: [{topic: t, services: [p.S/M]}]
  service-b:
    <<: *common
    grpc-server-port: 2
    retry-topic: b_retry
    dlq-topic: b_dlq
"""
    config = parse_config(text)
    assert config.consumers["service-b"].port == 2
    assert config.consumers["service-b"].topics == ("t",)


def test_tls_files_resolve_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / "certs" / name).write_text("x")
    tls = "tls: {ca-file: certs/ca.pem, cert-file: certs/client.pem, key-file: certs/client.key}"
    path = tmp_path / "broker.yaml"
    path.write_text(article("batch-size: 5", f"batch-size: 5\n    {tls}"))
    config = load_config(path)
    settings_ = config.consumers["service-b"].tls
    assert settings_ is not None and settings_.ca_file == tmp_path / "certs" / "ca.pem"
    assert settings_.key_file == tmp_path / "certs" / "client.key"
    enabled = parse_config(article("batch-size: 5", "batch-size: 5\n    tls: true"))
    assert enabled.consumers["service-b"].tls is not None


def test_retry_delay_schedule_last_repeats() -> None:
    consumer = parse_config(article("batch-size: 5", "batch-size: 5\n    retry-delays: [1s, 1m]"))
    b = consumer.consumers["service-b"]
    assert [b.retry_delay(n) for n in (1, 2, 3, 10)] == [1.0, 60.0, 60.0, 60.0]


def test_select_only() -> None:
    config = parse_config(ARTICLE)
    assert list(config.select(["service-b"]).consumers) == ["service-b"]
    with pytest.raises(KeyError, match="known: service-a, service-b"):
        config.select(["nope"])


def test_models_enforce_rules_when_built_from_python() -> None:
    common = dict(name="x", host="h", port=1, max_retry_attempts=1, batch_size=1)
    dist = [Distribution(topic="t", methods=(MethodRef(method="A"),))]
    with pytest.raises(ValueError, match="dlq-topic: must differ from retry-topic"):
        ConsumerConfig(**common, retry_topic="r", dlq_topic="r", distribution=dist)  # type: ignore[arg-type]
    a = ConsumerConfig(**common, retry_topic="t", dlq_topic="d", distribution=dist)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is a distribution topic"):
        BrokerConfig(consumers={"x": a})


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"consumers: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


# --- backoff -------------------------------------------------------------------------------


@given(
    attempt=st.integers(min_value=-3, max_value=10_000),
    base=st.floats(min_value=0, max_value=10),
    extra=st.floats(min_value=0, max_value=100),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(),
)
def test_backoff_is_capped_exponential_with_proportional_jitter(
    attempt: int, base: float, extra: float, jitter: float, seed: int
) -> None:
    policy = RetryPolicy(base_backoff=base, max_backoff=base + extra, jitter=jitter)
    delay = policy.backoff(attempt, random.Random(seed))
    capped = min(policy.max_backoff, base * 2.0 ** min(max(attempt, 1) - 1, 1000))
    assert capped * (1 - jitter) - 1e-9 <= delay <= capped + 1e-9


# --- durations -----------------------------------------------------------------------------

_units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(list(_units))), min_size=1, max_size=4
    )
)
def test_duration_strings_sum_their_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == pytest.approx(sum(n * _units[u] for n, u in parts))


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_duration_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
    assert parse_duration(seconds) == seconds


@given(st.text(max_size=12).filter(lambda s: not any(c.isdigit() for c in s)))
def test_duration_without_digits_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- environment interpolation -------------------------------------------------------------

_plain = st.text(alphabet="abcxyz-_.:/ 019", max_size=8)
_var = st.sampled_from(["HOST_A", "PORT_B", "EMPTY", "UNSET_X"])
_piece = st.one_of(
    _plain.map(lambda s: ("lit", s, s)),
    st.just(("lit", "$$", "$")),
    st.tuples(_var, _plain.filter(lambda s: "}" not in s)).map(lambda t: ("dflt", *t)),
    st.sampled_from(["HOST_A", "PORT_B", "EMPTY"]).map(lambda v: ("var", v, "")),
)
_ENV = {"HOST_A": "alpha.local", "PORT_B": "9000", "EMPTY": ""}


@given(st.lists(_piece, max_size=6))
def test_interpolation_follows_shell_rules(pieces: list[tuple[str, str, str]]) -> None:
    text, expected = "", ""
    for kind, a, b in pieces:
        if kind == "lit":
            text, expected = text + a, expected + b
        elif kind == "var":
            text, expected = text + f"${{{a}}}", expected + _ENV[a]
        else:
            text += f"${{{a}:-{b}}}"
            expected += _ENV.get(a) or b
    document = read_yaml(yaml.safe_dump({"value": text}), _ENV)
    assert document.problems == []
    assert document.data == {"value": expected}


def test_interpolation_into_typed_values() -> None:
    text = article('"12345"', '"${PORT_A}"').replace('"service-b-hostname"', "${HOST_B:-fallback}")
    config = parse_config(text, environ={"PORT_A": "4242"})
    assert config.consumers["service-a"].port == 4242
    assert config.consumers["service-b"].host == "fallback"


# --- any valid config round-trips through YAML ---------------------------------------------

_ident = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
_service = st.lists(_ident, min_size=1, max_size=3).map(".".join)
_method = st.tuples(st.none() | _service, _ident).map(
    lambda t: t[1] if t[0] is None else f"{t[0]}/{t[1]}"
)
_duration = st.one_of(
    st.floats(min_value=0.001, max_value=3600, allow_nan=False),
    st.integers(1, 5000).map(lambda n: f"{n}ms"),
    st.integers(1, 59).map(lambda n: f"{n}s"),
    st.integers(1, 9).map(lambda n: f"{n}m{n}s"),
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    topics = draw(
        st.lists(
            st.from_regex(r"ev[a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=4, unique=True
        )
    )
    consumers = {}
    for index, name in enumerate(names):
        own = draw(st.lists(st.sampled_from(topics), min_size=1, max_size=len(topics), unique=True))
        settings_: dict[str, object] = {
            "grpc-server-hostname": draw(
                st.sampled_from(["localhost", "10.0.0.1", "svc-a.internal", "::1"])
            ),
            "grpc-server-port": draw(
                st.integers(1, 65535).map(lambda p: draw(st.sampled_from([p, str(p)])))
            ),
            "max-retry-attempts": draw(st.integers(0, 50)),
            "batch-size": draw(st.integers(1, 1000)),
            "retry-topic": f"r{index}_retry",
            "dlq-topic": f"r{index}_dlq",
            "distribution": [
                {
                    "topic": topic,
                    "services": draw(st.lists(_method, min_size=1, max_size=3, unique=True)),
                    **draw(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "dedicated": st.booleans(),
                                "ordering": st.sampled_from(["none", "key"]),
                            },
                        )
                    ),
                }
                for topic in own
            ],
        }
        optional = {
            "grpc-service": _service,
            "call-timeout": _duration,
            "retry-delays": st.lists(_duration, min_size=1, max_size=4),
            "in-memory-retry": st.fixed_dictionaries(
                {},
                optional={
                    "attempts": st.integers(0, 9),
                    "jitter": st.floats(0, 1),
                    "base-backoff": st.just("100ms"),
                },
            ),
            "circuit-breaker": st.fixed_dictionaries(
                {},
                optional={
                    "enabled": st.booleans(),
                    "failure-threshold": st.integers(1, 9),
                    "open-seconds": _duration,
                    "probe-interval": _duration,
                },
            ),
        }
        settings_.update(draw(st.fixed_dictionaries({}, optional=optional)))  # type: ignore[arg-type]
        consumers[name] = settings_
    document: dict[str, object] = {"consumers": consumers}
    if draw(st.booleans()):
        document["topics"] = {
            "partitions": draw(st.integers(1, 12)),
            "replication-factor": draw(st.integers(1, 3)),
        }
    return document


@settings(max_examples=60, deadline=None)
@given(documents())
def test_any_valid_config_round_trips_through_yaml(document: dict[str, object]) -> None:
    config = parse_config(yaml.safe_dump(document, sort_keys=False))
    consumers = document["consumers"]
    assert isinstance(consumers, dict)
    assert list(config.consumers) == list(consumers)
    for name, raw in consumers.items():
        consumer = config.consumers[name]
        assert consumer.port == int(raw["grpc-server-port"])
        assert consumer.topics == tuple(d["topic"] for d in raw["distribution"])
    again = parse_config(config.to_yaml())
    assert again == config
    assert again.to_yaml() == config.to_yaml()


# --- the command line ----------------------------------------------------------------------


def _courier(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "courier", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    "case_id",
    [
        "unclosed-quote",
        "duplicate-consumer",
        "port-abc",
        "retry-equals-dlq",
        "env-unset",
        "top-level-scalar",
    ],
)
def test_broker_check_exits_2_with_one_line_and_no_traceback(tmp_path: Path, case_id: str) -> None:
    case = next(c for c in CASES if c.id == case_id)
    path = tmp_path / "broker.yaml"
    path.write_text(case.text)
    result = _courier("broker", "check", "--config", str(path))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(str(path) + case.prefix.removeprefix("broker.yaml")), lines
    assert case.fragment in lines[0]
    assert lines[1:] == [f"{path}: 1 problem"]


def test_broker_check_prints_summary_for_a_valid_file() -> None:
    result = _courier("broker", "check", "--config", str(DATA / "article.yaml"))
    assert result.returncode == 0, result.stderr
    for text in ("service-a", "event_y", "EndpointA", "EndpointB", "service_b_dlq", "EndpointC"):
        assert text in result.stdout


def test_broker_run_rejects_unknown_only_and_bad_config(tmp_path: Path) -> None:
    result = _courier("broker", "run", "--config", str(DATA / "article.yaml"), "--only", "nope")
    assert result.returncode == 2 and "no such consumer" in result.stderr
    missing = _courier("broker", "run", "--config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "file not found" in missing.stderr
    assert "Traceback" not in result.stderr + missing.stderr
