"""Payload -> JSON: through generated code or a descriptor set; null and a reason, never a crash."""

from __future__ import annotations

import json
import sys

from google.protobuf import descriptor_pb2, duration_pb2, message_factory, struct_pb2, timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from courier.lake.decode import PayloadDecoder, pool_from_descriptor_set

from .lake_helpers import delivered_message

GENERATED = PayloadDecoder.for_generated_code()


def test_well_known_types_decode_to_their_json_forms() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1_767_225_600, nanos=5_000_000)
    assert GENERATED.decode("google.protobuf.Timestamp", stamp.SerializeToString()).json == (
        '"2026-01-01T00:00:00.005Z"'
    )
    duration = duration_pb2.Duration(seconds=90)
    assert GENERATED.decode("google.protobuf.Duration", duration.SerializeToString()).json == (
        '"90s"'
    )
    value = struct_pb2.Struct()
    value.update({"a": 1, "b": ["x", True]})
    decoded = GENERATED.decode("google.protobuf.Struct", value.SerializeToString())
    assert json.loads(decoded.json or "") == {"a": 1.0, "b": ["x", True]}


def test_generated_messages_use_proto_field_names_and_print_defaults() -> None:
    message = delivered_message(7)
    decoded = GENERATED.decode("packages.v1.PackageDelivered", message.SerializeToString())
    document = json.loads(decoded.json or "")
    assert decoded.error is None
    assert document["received_by"] == "person 7"
    assert document["package"]["tracking_code"] == "BR000000007"
    assert document["package"]["weight_grams"] == 107
    assert document["package"]["status"] == "PACKAGE_STATUS_UNSPECIFIED"  # default, printed
    assert document["package"]["recipient"]["city"] == "São Paulo"


def test_unknown_types_and_missing_parts_give_null_with_a_reason() -> None:
    assert GENERATED.decode("nope.v1.Missing", b"").error == "unknown type 'nope.v1.Missing'"
    assert GENERATED.decode(None, b"x").error == "no type"
    assert GENERATED.decode("google.protobuf.Duration", None).error == "no payload"
    assert GENERATED.decode("not a type name", b"").json is None


def test_bytes_that_do_not_parse_give_null_with_a_reason() -> None:
    decoded = GENERATED.decode("packages.v1.PackageDelivered", b"\x0a\xff\xff\xff")
    assert decoded.json is None
    assert decoded.error is not None and decoded.error.startswith(
        "cannot decode as packages.v1.PackageDelivered"
    )


@given(st.binary(max_size=200), st.sampled_from([
    "packages.v1.PackageDelivered", "google.protobuf.Struct", "google.protobuf.Any",
    "google.protobuf.Timestamp", "x.y", "",
]))  # fmt: skip
def test_no_payload_crashes_the_decoder(payload: bytes, type_name: str) -> None:
    decoded = GENERATED.decode(type_name, payload)
    assert (decoded.json is None) != (decoded.error is None)
    if decoded.json is not None:
        json.loads(decoded.json)


def test_type_names_from_headers_never_import_arbitrary_modules() -> None:
    assert "antigravity" not in sys.modules
    decoder = PayloadDecoder.for_generated_code()
    assert decoder.decode("antigravity.v1.Fly", b"").error == "unknown type 'antigravity.v1.Fly'"
    assert "antigravity" not in sys.modules


def _parcel_descriptor_set() -> tuple[bytes, bytes]:
    """A FileDescriptorSet of a custom message (dependency listed last) and one payload."""
    parcel = descriptor_pb2.FileDescriptorProto(
        name="lake/test/v1/parcel.proto",
        package="lake.test.v1",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    message = parcel.message_type.add(name="Parcel")
    message.field.add(name="parcel_id", number=1, type=9, label=1)  # string
    message.field.add(name="weight", number=2, type=3, label=1)  # int64
    message.field.add(
        name="seen_at", number=3, type=11, label=1, type_name=".google.protobuf.Timestamp"
    )
    stamp_file = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(stamp_file)
    file_set = descriptor_pb2.FileDescriptorSet(file=[parcel, stamp_file])
    data = file_set.SerializeToString()
    pool = pool_from_descriptor_set(data)
    parcel_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("lake.test.v1.Parcel")
    )
    payload = parcel_class(parcel_id="p-1", weight=12, seen_at={"seconds": 60}).SerializeToString()
    return data, payload


def test_a_descriptor_set_decodes_types_without_generated_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data, payload = _parcel_descriptor_set()
    path = tmp_path / "set.binpb"
    path.write_bytes(data)
    decoder = PayloadDecoder.for_generated_code(descriptor_sets=[path])
    document = json.loads(decoder.decode("lake.test.v1.Parcel", payload).json or "")
    assert document == {"parcel_id": "p-1", "weight": "12", "seen_at": "1970-01-01T00:01:00Z"}
    # The generated code still answers for everything else.
    assert decoder.decode("google.protobuf.Duration", b"\x08\x01").json == '"1s"'
    assert GENERATED.decode("lake.test.v1.Parcel", payload).json is None
