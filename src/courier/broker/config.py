"""The broker configuration (DESIGN.md contract 3): load it, validate it, use it.

>>> config = load_config("broker.yaml")                   # doctest: +SKIP
>>> consumer = config.consumers["service-a"]              # doctest: +SKIP
>>> consumer.group_id, consumer.target                    # doctest: +SKIP
('courier.service-a', 'service-a-hostname:12345')
>>> [m.path for m in consumer.methods_for("event_y")]      # doctest: +SKIP
['/events.v1.EventsAPI/EndpointA', '/events.v1.EventsAPI/EndpointB']

The article's YAML is accepted as written. Every key and default: ``docs/broker-config.md``.
Implementation: ``config_types`` (one value each), ``config_schema`` (the models),
``config_rules`` (rules across values), ``config_yaml`` (YAML with lines, ``${VAR}``),
``config_loader`` (putting it together), ``config_problems`` (the errors).
"""

from __future__ import annotations

from courier.broker.config_loader import load_config, parse_config
from courier.broker.config_problems import ConfigError, ConfigProblem
from courier.broker.config_schema import (
    DEFAULT_RETRY_DELAYS,
    BreakerPolicy,
    BrokerConfig,
    ConsumerConfig,
    ConsumerDefaults,
    Distribution,
    MethodRef,
    RetryPolicy,
    TlsSettings,
    TopicSettings,
    UnresolvedMethodError,
)
from courier.broker.config_types import format_duration, parse_duration

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "BreakerPolicy",
    "BrokerConfig",
    "ConfigError",
    "ConfigProblem",
    "ConsumerConfig",
    "ConsumerDefaults",
    "Distribution",
    "MethodRef",
    "RetryPolicy",
    "TlsSettings",
    "TopicSettings",
    "UnresolvedMethodError",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
]
