"""Finding generated message classes by name, and reading Courier's message options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from packages.v1 import events_api_pb2, events_pb2, packages_pb2

from courier.schemas import (
    events_by_topic,
    key_field_of,
    key_of,
    message_class,
    topic_of,
)
from courier.v1 import options_pb2

texts = st.text(max_size=40)


@st.composite
def packages(draw: st.DrawFn) -> packages_pb2.Package:
    def address() -> packages_pb2.Address:
        return packages_pb2.Address(
            name=draw(texts), street=draw(texts), city=draw(texts), country_code="BR"
        )

    return packages_pb2.Package(
        id=draw(texts),
        tracking_code=draw(texts),
        status=draw(st.sampled_from(packages_pb2.PackageStatus.values())),
        sender=address(),
        recipient=address(),
        weight_grams=draw(st.integers(0, 2**32 - 1)),
        created_at=Timestamp(
            seconds=draw(st.integers(0, 253402300799)), nanos=draw(st.integers(0, 999_999_999))
        ),
    )


@given(packages(), texts)
def test_package_delivered_round_trips(package: packages_pb2.Package, received_by: str) -> None:
    event = events_pb2.PackageDelivered(package=package, received_by=received_by)
    decoded = events_pb2.PackageDelivered.FromString(event.SerializeToString())
    assert decoded == event
    assert decoded.package.id == package.id


def test_message_class_finds_generated_classes_by_full_name() -> None:
    cls = message_class("packages.v1.PackageDelivered")
    assert cls is events_pb2.PackageDelivered
    assert message_class("packages.v1.Package") is packages_pb2.Package
    assert message_class("google.protobuf.Timestamp") is Timestamp


def test_message_class_decodes_a_payload_to_json() -> None:
    payload = events_pb2.PackageReturned(
        package=packages_pb2.Package(id="p-7", status=packages_pb2.PACKAGE_STATUS_RETURNED),
        reason="address not found",
    ).SerializeToString()
    cls = message_class("packages.v1.PackageReturned")
    assert cls is not None
    as_json = json_format.MessageToDict(cls.FromString(payload))
    assert as_json == {
        "package": {"id": "p-7", "status": "PACKAGE_STATUS_RETURNED"},
        "reason": "address not found",
    }


def test_unknown_types_give_none() -> None:
    assert message_class("packages.v1.NoSuchEvent") is None
    assert message_class("nosuchpackage.v1.Thing") is None
    assert message_class("Bare") is None


def test_the_topic_option_is_on_the_descriptor() -> None:
    options = events_pb2.PackageDelivered.DESCRIPTOR.GetOptions()
    assert options.Extensions[options_pb2.topic] == "packages.delivered"
    assert topic_of(events_pb2.PackageDelivered) == "packages.delivered"
    assert topic_of(events_pb2.PackageCreated()) == "packages.created"
    assert topic_of(events_pb2.PackageReturned.DESCRIPTOR) == "packages.returned"
    assert topic_of(packages_pb2.Package) is None


def test_key_field_names_the_aggregate_id() -> None:
    event = events_pb2.PackageDelivered(package=packages_pb2.Package(id="p-42"))
    assert key_field_of(event) == "package.id"
    assert key_of(event) == "p-42"
    assert key_of(events_pb2.PackageDelivered()) is None
    assert key_of(packages_pb2.Package(id="p-1")) is None


def test_events_by_topic_lists_every_example_event() -> None:
    assert events_by_topic() == {
        "packages.created": ["packages.v1.PackageCreated"],
        "packages.delivered": ["packages.v1.PackageDelivered"],
        "packages.returned": ["packages.v1.PackageReturned"],
    }


def test_consumer_services_take_the_event_itself() -> None:
    services = events_api_pb2.DESCRIPTOR.services_by_name
    methods = {
        f"{service.full_name}/{method.name}": method.input_type.full_name
        for service in services.values()
        for method in service.methods
    }
    assert methods == {
        "packages.v1.EventsAPI/PackageCreated": "packages.v1.PackageCreated",
        "packages.v1.EventsAPI/PackageDelivered": "packages.v1.PackageDelivered",
        "packages.v1.EventsAPI/PackageReturned": "packages.v1.PackageReturned",
        "packages.v1.ServiceAEventsAPI/EndpointA": "packages.v1.PackageDelivered",
        "packages.v1.ServiceAEventsAPI/EndpointB": "packages.v1.PackageDelivered",
        "packages.v1.ServiceBEventsAPI/EndpointC": "packages.v1.PackageCreated",
    }
    assert all(
        method.output_type.full_name == "google.protobuf.Empty"
        for service in services.values()
        for method in service.methods
    )


def test_message_class_imports_generated_code_on_demand(tmp_path: Path) -> None:
    # A fresh process (the lake sink, the admin page) has imported no generated module yet.
    program = (
        "import sys\n"
        "from courier.schemas import message_class\n"
        "assert 'packages.v1.events_pb2' not in sys.modules\n"
        "print(message_class('packages.v1.PackageDelivered').__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "packages.v1.events_pb2"
