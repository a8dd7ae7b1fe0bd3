"""The broker configuration as immutable values (DESIGN.md contract 3).

Attributes are snake_case; each field's alias is its YAML key (kebab-case). The models
validate on construction, from Python or from YAML; :mod:`courier.broker.config_loader`
adds file lines, ``defaults`` and ``${VAR}`` interpolation on top. Every key and default is
documented in ``docs/broker-config.md``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from courier.broker.config_rules import (
    broker_problems,
    consumer_name_problem,
    consumer_problems,
    distribution_problems,
)
from courier.broker.config_types import (
    METHOD_NAME,
    SERVICE_NAME,
    DelayList,
    ExistingFile,
    Flag,
    Fraction,
    Hostname,
    NonEmptyText,
    NonNegativeInt,
    Ordering,
    Port,
    PositiveInt,
    PositiveSeconds,
    Seconds,
    ServiceName,
    TopicName,
    config_error,
    list_of,
    show,
)

# The loader passes this in the validation context: it checks the cross-field rules itself so
# that it can report every problem with its own line, instead of the first one per model.
DEFER_RULES = "courier_defer_rules"

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)


def _kebab(name: str) -> str:
    return name.replace("_", "-")


_MODEL = ConfigDict(
    frozen=True,
    extra="forbid",
    alias_generator=_kebab,
    validate_by_name=True,
    validate_by_alias=True,
)


def _deferred(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(DEFER_RULES))


def _raise_first(problems: list[tuple[tuple[str | int, ...], str]]) -> None:
    if problems:
        parts, message = problems[0]
        where = ".".join(str(p) for p in parts)
        config_error(f"{where}: {message}" if where else message)


class UnresolvedMethodError(LookupError):
    """A bare method name whose gRPC service is not known yet (see :class:`MethodRef`)."""


class RetryPolicy(BaseModel):
    """In-memory retries before an event is handed to the retry topic (YAML ``in-memory-retry``).

    ``attempts`` counts retries after the first call fails (0: hand off at once), so one
    event costs at most ``attempts + 1`` calls per method before the hand-off.
    """

    model_config = _MODEL

    attempts: NonNegativeInt = 3
    base_backoff: Seconds = 0.2
    max_backoff: Seconds = 5.0
    jitter: Fraction = 0.2

    @model_validator(mode="after")
    def _backoff_bounds(self) -> RetryPolicy:
        if self.max_backoff < self.base_backoff:
            config_error(
                f"max-backoff ({self.max_backoff}s) must not be smaller than "
                f"base-backoff ({self.base_backoff}s)"
            )
        return self

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before in-memory retry number ``attempt`` (1 = the first retry).

        Exponential and capped: ``min(max_backoff, base_backoff * 2 ** (attempt - 1))``, then
        *proportional* jitter: multiplied by a uniform factor in ``[1 - jitter, 1]``. The
        result never exceeds ``max_backoff``; ``jitter: 1`` is "full jitter" (uniform in
        ``[0, capped]``), ``jitter: 0`` is deterministic. ``attempt`` below 1 counts as 1.

        >>> RetryPolicy(base_backoff=0.1, max_backoff=1, jitter=0).backoff(3, random.Random())
        0.4
        """
        exponent = min(max(attempt, 1) - 1, 1000)  # 2.0**1000 is still a finite float
        capped = min(self.max_backoff, self.base_backoff * 2.0**exponent)
        return float(capped * (1.0 - self.jitter * rng.random()))


class BreakerPolicy(BaseModel):
    """The per-consumer circuit breaker (YAML ``circuit-breaker``).

    After ``failure_threshold`` consecutive retryable failures the breaker opens: the
    consumer's partitions are paused for ``open_seconds``; then one probe call is let
    through every ``probe_interval`` seconds until one succeeds and the breaker closes.
    """

    model_config = _MODEL

    enabled: Flag = True
    failure_threshold: PositiveInt = 5
    open_seconds: PositiveSeconds = 5.0
    probe_interval: PositiveSeconds = 1.0


class TlsSettings(BaseModel):
    """TLS to the consumer's gRPC server (YAML ``tls``); files must exist when loaded.

    No ``ca_file``: the system's roots. ``cert_file`` with ``key_file``: mutual TLS.
    ``server_name`` overrides the name checked against the server certificate.
    """

    model_config = _MODEL

    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None
    server_name: NonEmptyText | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            config_error("cert-file and key-file go together: set both for mutual TLS, or neither")
        return self


class MethodRef(BaseModel):
    """One gRPC method to deliver to: ``service`` (``package.v1.Service``) and ``method``.

    From YAML, ``"package.v1.Service/Method"`` or a bare ``"Method"``; a bare method takes
    the consumer's ``grpc-service`` (or the one in ``defaults``). With neither, ``service``
    stays None and the broker resolves it at start-up through gRPC server reflection.
    """

    model_config = _MODEL

    service: ServiceName | None = None
    method: str

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, MethodRef | dict):
            return data
        hint = f'must be a gRPC method, "package.Service/Method" or "Method", got {show(data)}'
        if not isinstance(data, str):
            config_error(hint)
        parts = data.strip().removeprefix("/").split("/")
        if len(parts) == 1 and METHOD_NAME.fullmatch(parts[0]):
            return {"method": parts[0]}
        if len(parts) == 2 and SERVICE_NAME.fullmatch(parts[0]) and METHOD_NAME.fullmatch(parts[1]):
            return {"service": parts[0], "method": parts[1]}
        config_error(hint)

    @field_validator("method")
    @classmethod
    def _method_name(cls, value: str) -> str:
        if not METHOD_NAME.fullmatch(value):
            config_error(f"must be a gRPC method name, got {show(value)}")
        return value

    @property
    def path(self) -> str:
        """The call path ``/package.Service/Method``; UnresolvedMethodError if no service."""
        if self.service is None:
            raise UnresolvedMethodError(
                f"method {self.method!r} has no gRPC service: set grpc-service in the broker "
                "config or resolve it by reflection (MethodRef.with_service)"
            )
        return f"/{self.service}/{self.method}"

    def with_service(self, service: str) -> MethodRef:
        """This method on ``service`` (keeps an explicit service as it is)."""
        return self if self.service is not None else MethodRef(service=service, method=self.method)

    def __str__(self) -> str:
        return self.method if self.service is None else f"{self.service}/{self.method}"


class Distribution(BaseModel):
    """One topic a consumer reads, and the methods each of its events is delivered to.

    ``dedicated``: this topic gets its own Kafka consumer (for high-volume events).
    ``ordering``: ``none`` (default; no order promised) or ``key`` (events of one key in order).
    """

    model_config = _MODEL

    topic: TopicName
    methods: Annotated[tuple[MethodRef, ...], list_of("gRPC methods")] = Field(alias="services")
    dedicated: Flag = False
    ordering: Ordering = "none"

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Distribution:
        if not _deferred(info):
            _raise_first(distribution_problems(self.methods))
        return self


def _tls_switch(value: Any) -> Any:
    # `tls: true` turns TLS on with the system's roots; `tls: false` turns it off.
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ConsumerConfig(BaseModel):
    """One consumer service: where its gRPC server is and which events it gets.

    ``retry_delays[n-1]`` is the delay before retry-topic attempt ``n``; the last one repeats
    (see :meth:`retry_delay`). ``max_retry_attempts`` counts retry-topic deliveries before the
    DLQ; ``batch_size`` is the number of events in flight per partition.
    """

    model_config = _MODEL

    name: str
    host: Hostname = Field(alias="grpc-server-hostname")
    port: Port = Field(alias="grpc-server-port")
    max_retry_attempts: NonNegativeInt
    batch_size: PositiveInt
    retry_topic: TopicName
    dlq_topic: TopicName
    grpc_service: ServiceName | None = None
    call_timeout: PositiveSeconds = 10.0
    retry: RetryPolicy = Field(default_factory=RetryPolicy, alias="in-memory-retry")
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy, alias="circuit-breaker")
    retry_delays: DelayList = DEFAULT_RETRY_DELAYS
    tls: Annotated[TlsSettings | None, BeforeValidator(_tls_switch)] = None
    distribution: Annotated[tuple[Distribution, ...], list_of("distribution entries")]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = consumer_name_problem(value)
        if problem:
            config_error(problem)
        return value

    @model_validator(mode="after")
    def _resolve_and_check(self, info: ValidationInfo) -> ConsumerConfig:
        if self.grpc_service is not None:
            service = self.grpc_service
            resolved = tuple(
                d.model_copy(update={"methods": tuple(m.with_service(service) for m in d.methods)})
                for d in self.distribution
            )
            object.__setattr__(self, "distribution", resolved)
        if not _deferred(info):
            _raise_first(consumer_problems(self))
        return self

    @property
    def group_id(self) -> str:
        """The Kafka consumer group: ``courier.<name>``."""
        return f"courier.{self.name}"

    @property
    def target(self) -> str:
        """The gRPC target ``host:port`` (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def topics(self) -> tuple[str, ...]:
        """The distribution topics, in config order (not the retry or DLQ topic)."""
        return tuple(d.topic for d in self.distribution)

    def methods_for(self, topic: str) -> tuple[MethodRef, ...]:
        """The methods an event from distribution ``topic`` goes to; KeyError if not listed."""
        for entry in self.distribution:
            if entry.topic == topic:
                return entry.methods
        raise KeyError(f"consumer {self.name!r} has no distribution topic {topic!r}")

    def distribution_for(self, topic: str) -> Distribution:
        """The distribution entry of ``topic``; KeyError if not listed."""
        for entry in self.distribution:
            if entry.topic == topic:
                return entry
        raise KeyError(f"consumer {self.name!r} has no distribution topic {topic!r}")

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retry-topic delivery ``attempt`` (1-based; the last repeats)."""
        index = min(max(attempt, 1), len(self.retry_delays)) - 1
        return self.retry_delays[index]


class ConsumerDefaults(BaseModel):
    """The top-level ``defaults``: consumer keys applied where a consumer does not set them.

    Mapping values (``in-memory-retry``, ``circuit-breaker``, ``tls``) merge key by key.
    Keys that identify one consumer (port, topics, distribution) cannot have a default.
    """

    model_config = _MODEL

    host: Hostname | None = Field(default=None, alias="grpc-server-hostname")
    max_retry_attempts: NonNegativeInt | None = None
    batch_size: PositiveInt | None = None
    grpc_service: ServiceName | None = None
    call_timeout: PositiveSeconds | None = None
    retry: RetryPolicy | None = Field(default=None, alias="in-memory-retry")
    breaker: BreakerPolicy | None = Field(default=None, alias="circuit-breaker")
    retry_delays: DelayList | None = None
    tls: Annotated[TlsSettings | None, BeforeValidator(_tls_switch)] = None


class TopicSettings(BaseModel):
    """The top-level ``topics``: how ``courier topics ensure`` creates missing topics."""

    model_config = _MODEL

    partitions: PositiveInt = 3
    replication_factor: PositiveInt = 1


class BrokerConfig(BaseModel):
    """The whole broker configuration: consumer services by name, in file order."""

    model_config = _MODEL

    consumers: Mapping[str, ConsumerConfig]
    topics: TopicSettings = Field(default_factory=TopicSettings)
    source_path: Path | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> BrokerConfig:
        for name, consumer in self.consumers.items():
            if name != consumer.name:
                config_error(f"consumers[{name!r}] holds a consumer named {consumer.name!r}")
        if not self.consumers:
            config_error("consumers: must define at least one consumer")
        if not _deferred(info):
            _raise_first(broker_problems(self.consumers))
        object.__setattr__(self, "consumers", MappingProxyType(dict(self.consumers)))
        return self

    def consumer(self, name: str) -> ConsumerConfig:
        """The consumer called ``name``; KeyError naming the known ones if there is none."""
        try:
            return self.consumers[name]
        except KeyError:
            known = ", ".join(self.consumers) or "none"
            raise KeyError(f"no consumer {name!r} in the config (known: {known})") from None

    def select(self, names: Iterable[str]) -> BrokerConfig:
        """Only the named consumers (sidecar mode); KeyError for an unknown name."""
        wanted = list(dict.fromkeys(names))
        chosen = {name: self.consumer(name) for name in wanted}
        return self.model_copy(update={"consumers": MappingProxyType(chosen)})

    def topic_roles(self) -> dict[str, list[tuple[str, Literal["distribution", "retry", "dlq"]]]]:
        """Every topic the config names, with the (consumer, role) pairs that use it."""
        roles: dict[str, list[tuple[str, Literal["distribution", "retry", "dlq"]]]] = {}
        for consumer in self.consumers.values():
            for topic in consumer.topics:
                roles.setdefault(topic, []).append((consumer.name, "distribution"))
            roles.setdefault(consumer.retry_topic, []).append((consumer.name, "retry"))
            roles.setdefault(consumer.dlq_topic, []).append((consumer.name, "dlq"))
        return roles

    def to_document(self) -> dict[str, Any]:
        """The config as a YAML-ready mapping with kebab-case keys (defaults spelled out)."""
        from courier.broker.config_document import broker_document

        return broker_document(self)

    def to_yaml(self) -> str:
        """The config as YAML that :func:`parse_config` reads back to an equal config."""
        return yaml.safe_dump(self.to_document(), sort_keys=False, allow_unicode=True)
