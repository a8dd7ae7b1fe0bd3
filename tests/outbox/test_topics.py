"""Topic and key derivation: explicit > (courier.v1.topic) option > rule from the full name."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.empty_pb2 import Empty
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Package

from courier.outbox.topics import (
    InvalidTopic,
    check_topic,
    key_from_message,
    snake_case,
    topic_for,
    topic_from_full_name,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PackageDelivered", "package_delivered"),
        ("HTTPRequestSent", "http_request_sent"),
        ("Invoice", "invoice"),
        ("V2Thing", "v2_thing"),
        ("already_snake", "already_snake"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_rule_keeps_the_package_and_snake_cases_nested_names() -> None:
    assert topic_from_full_name("packages.v1.PackageDelivered", "packages.v1") == (
        "packages.v1.package_delivered"
    )
    assert topic_from_full_name("billing.v2.Invoice.LineAdded", "billing.v2") == (
        "billing.v2.invoice.line_added"
    )
    assert topic_from_full_name("Bare", "") == "bare"


def test_well_known_type_without_option_follows_the_rule() -> None:
    assert topic_for(Timestamp.DESCRIPTOR) == "google.protobuf.timestamp"
    assert topic_for(Empty.DESCRIPTOR) == "google.protobuf.empty"


def test_topic_option_wins_over_the_rule_and_explicit_wins_over_both() -> None:
    assert topic_for(PackageDelivered.DESCRIPTOR) == "packages.delivered"
    assert topic_for(PackageDelivered.DESCRIPTOR, "custom.topic") == "custom.topic"


def test_key_field_option_reads_the_nested_field() -> None:
    message = PackageDelivered(package=Package(id="pkg-42"))
    assert key_from_message(message) == "pkg-42"
    assert key_from_message(PackageDelivered()) is None  # unset string: no key
    assert key_from_message(Timestamp(seconds=5)) is None  # no option at all


def _message_with_option_from_private_pool() -> type:
    """A message whose topic option lives in its own descriptor pool (no clash with courier.v1)."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(
        descriptor_pb2.FileDescriptorProto.FromString(
            descriptor_pb2.DESCRIPTOR.serialized_pb
        ).SerializeToString()
    )
    options_file = descriptor_pb2.FileDescriptorProto(
        name="testopts/options.proto",
        package="courier.v1",
        dependency=["google/protobuf/descriptor.proto"],
    )
    options_file.extension.add(
        name="topic",
        number=50701,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        extendee=".google.protobuf.MessageOptions",
    )
    pool.Add(options_file)
    event_file = descriptor_pb2.FileDescriptorProto(
        name="testopts/event.proto",
        package="shop.v3",
        dependency=["testopts/options.proto"],
        syntax="proto3",
    )
    message = event_file.message_type.add(name="OrderPlaced")
    message.field.add(
        name="id",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    # The option as raw bytes: field 50701, wire type 2 (length-delimited).
    value = b"orders.placed"
    tag = (50701 << 3) | 2
    varint = bytearray()
    while True:
        byte = tag & 0x7F
        tag >>= 7
        varint.append(byte | (0x80 if tag else 0))
        if not tag:
            break
    message.options.MergeFromString(bytes(varint) + bytes([len(value)]) + value)
    pool.Add(event_file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.v3.OrderPlaced"))


def test_option_is_read_from_a_message_built_with_descriptor_pb2() -> None:
    order_placed = _message_with_option_from_private_pool()
    assert topic_for(order_placed.DESCRIPTOR) == "orders.placed"


@given(
    st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True),
)
def test_derived_topics_are_always_valid_kafka_names(package: str, name: str) -> None:
    topic = topic_from_full_name(f"{package}.{name}", package)
    assert check_topic(topic) == topic
    assert topic.startswith(package + ".")


@pytest.mark.parametrize("bad", ["", "a b", "x" * 250, "..", "topic/with/slash", "ümlaut"])
def test_invalid_topics_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        check_topic(bad)
