"""A broker config written back as a YAML document (``BrokerConfig.to_yaml``).

Every default is spelled out and every method is written with its service when known, so
reading the document back gives an equal config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from courier.broker.config_schema import BrokerConfig, ConsumerConfig


def broker_document(config: BrokerConfig) -> dict[str, Any]:
    """``config`` as a mapping with the YAML's kebab-case keys."""
    return {
        "topics": config.topics.model_dump(by_alias=True),
        "consumers": {name: consumer_document(c) for name, c in config.consumers.items()},
    }


def consumer_document(consumer: ConsumerConfig) -> dict[str, Any]:
    """One consumer's settings as a mapping with the YAML's kebab-case keys."""
    document = consumer.model_dump(by_alias=True, exclude={"name", "tls", "distribution"})
    document["retry-delays"] = list(consumer.retry_delays)
    if consumer.grpc_service is None:
        del document["grpc-service"]
    if consumer.tls is not None:
        tls = consumer.tls.model_dump(by_alias=True, exclude_none=True)
        document["tls"] = {key: str(value) for key, value in tls.items()}
    document["distribution"] = [
        {
            "topic": entry.topic,
            "services": [str(method) for method in entry.methods],
            "dedicated": entry.dedicated,
            "ordering": entry.ordering,
        }
        for entry in consumer.distribution
    ]
    return document
