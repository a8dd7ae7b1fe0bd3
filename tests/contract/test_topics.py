"""TopicCatalog: topic -> message types, from the (courier.v1.topic) options in proto/."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given
from hypothesis import strategies as st
from packages.v1 import events_api_pb2_grpc

from courier.broker.config import parse_config
from courier.consumer import build_server
from courier.contract import Problem, ProtoError, TopicCatalog, check_consumer
from courier.contract.topics import _string_field, compile_proto_dir
from courier.schemas import events_by_topic
from courier.v1 import options_pb2

PROTO = Path(__file__).resolve().parents[2] / "proto"


def test_proto_dir_agrees_with_the_generated_code() -> None:
    catalog = TopicCatalog.from_proto_dir(PROTO)
    assert {t: sorted(n) for t, n in catalog.types_by_topic.items()} == events_by_topic()
    assert catalog.types_for("packages.delivered") == {"packages.v1.PackageDelivered"}
    assert catalog.types_for("nobody.declares.this") == frozenset()


def _file_set_with(*messages: descriptor_pb2.DescriptorProto) -> descriptor_pb2.FileDescriptorSet:
    file_set = compile_proto_dir(PROTO)  # brings courier/v1/options.proto (the extension)
    extra = file_set.file.add(name="shop/v1/shop.proto", package="shop.v1", syntax="proto3")
    extra.message_type.extend(messages)
    return file_set


def _event(name: str, topic: str | None) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    if topic is not None:
        message.options.Extensions[options_pb2.key_field] = "id"
        message.options.Extensions[options_pb2.topic] = topic
    return message


def test_nested_messages_and_topics_with_several_types() -> None:
    outer = _event("Order", None)
    outer.nested_type.append(_event("Placed", "orders"))
    catalog = TopicCatalog.from_file_set(_file_set_with(outer, _event("OrderV2", "orders")))
    assert catalog.types_for("orders") == {"shop.v1.Order.Placed", "shop.v1.OrderV2"}


def test_without_courier_options_nothing_is_known() -> None:
    file_set = descriptor_pb2.FileDescriptorSet()
    file_set.file.add(name="a.proto", package="a").message_type.add(name="A")
    assert TopicCatalog.from_file_set(file_set).types_by_topic == {}


def test_descriptor_set_file(tmp_path: Path) -> None:
    path = tmp_path / "set.binpb"
    path.write_bytes(_file_set_with(_event("Shipped", "shipments")).SerializeToString())
    assert TopicCatalog.from_descriptor_set(path).types_for("shipments") == {"shop.v1.Shipped"}
    (tmp_path / "junk").write_bytes(b"\xff\xff")
    with pytest.raises(ProtoError, match="is not a FileDescriptorSet"):
        TopicCatalog.from_descriptor_set(tmp_path / "junk")
    with pytest.raises(ProtoError, match="does not exist"):
        TopicCatalog.from_proto_dir(tmp_path / "nope")


@given(topic=st.text(max_size=300), other=st.text(max_size=50), number=st.integers(1, 50))
def test_string_field_reads_what_protobuf_wrote(topic: str, other: str, number: int) -> None:
    options = descriptor_pb2.MessageOptions(deprecated=True, map_entry=False)
    options.Extensions[options_pb2.key_field] = other
    options.Extensions[options_pb2.topic] = topic
    data = options.SerializeToString()
    assert _string_field(data, 50701) == topic  # extensions have presence: "" is written
    assert _string_field(data, number) is None


def test_a_topic_with_several_types_is_a_problem_for_each_method() -> None:
    config = parse_config(
        "consumers:\n"
        "  service-a:\n"
        '    grpc-server-hostname: "127.0.0.1"\n'
        '    grpc-server-port: "1"\n'
        '    grpc-service: "packages.v1.ServiceAEventsAPI"\n'
        "    max-retry-attempts: 1\n"
        "    batch-size: 1\n"
        '    retry-topic: "a_retry"\n'
        '    dlq-topic: "a_dlq"\n'
        "    distribution:\n"
        '      - topic: "packages.delivered"\n'
        '        services: ["EndpointA"]\n'
    )
    catalog = TopicCatalog(
        {"packages.delivered": frozenset({"packages.v1.PackageDelivered", "packages.v1.Other"})}
    )
    with build_server(events_api_pb2_grpc.ServiceAEventsAPIServicer()) as server:
        consumer = config.consumers["service-a"].model_copy(update={"port": server.port})
        problems = check_consumer(consumer, catalog, timeout=2)
    assert problems == [
        Problem(
            "service-a",
            "packages.v1.ServiceAEventsAPI/EndpointA takes packages.v1.PackageDelivered but topic "
            "packages.delivered carries several types (packages.v1.Other, "
            "packages.v1.PackageDelivered); every event of the topic reaches the method",
        )
    ]
