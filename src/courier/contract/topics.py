"""Which protobuf message each topic carries, read from the shared protobuf repository.

An event message names its topic with Courier's option (``proto/courier/v1/options.proto``)::

    message PackageDelivered {
      option (courier.v1.topic) = "packages.delivered";
      ...
    }

:class:`TopicCatalog` compiles ``proto/`` with grpcio-tools (or reads a descriptor set made by
``buf build -o``) and maps each topic to the messages that declare it. The option is read from
the raw descriptors, so no generated code has to be importable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

TOPIC_OPTION = "courier.v1.topic"
_MESSAGE_OPTIONS = ".google.protobuf.MessageOptions"


class ProtoError(Exception):
    """The protobuf sources or descriptor set cannot be read (a configuration problem)."""


@dataclass(frozen=True)
class TopicCatalog:
    """Topic -> full names of the messages whose ``(courier.v1.topic)`` option names it."""

    types_by_topic: dict[str, frozenset[str]] = field(default_factory=dict)

    def types_for(self, topic: str) -> frozenset[str]:
        """The message types declared for ``topic`` (empty when no message declares it)."""
        return self.types_by_topic.get(topic, frozenset())

    @classmethod
    def from_file_set(cls, file_set: descriptor_pb2.FileDescriptorSet) -> TopicCatalog:
        """Scan every message (nested ones too) of a descriptor set for the topic option."""
        number = _topic_option_number(file_set.file)
        found: dict[str, set[str]] = {}
        if number is None:
            return cls({})
        for proto in file_set.file:
            for full_name, message in _messages(proto.package, proto.message_type):
                if not message.HasField("options"):
                    continue
                topic = _string_field(message.options.SerializeToString(), number)
                if topic:
                    found.setdefault(topic, set()).add(full_name)
        return cls({topic: frozenset(names) for topic, names in found.items()})

    @classmethod
    def from_descriptor_set(cls, path: Path) -> TopicCatalog:
        """Read a ``FileDescriptorSet`` file (``buf build -o set.binpb``, ``protoc -o``)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProtoError(f"cannot read descriptor set {path}: {exc.strerror}") from exc
        file_set = descriptor_pb2.FileDescriptorSet()
        try:
            file_set.ParseFromString(data)
        except Exception as exc:
            raise ProtoError(f"{path} is not a FileDescriptorSet: {exc}") from exc
        return cls.from_file_set(file_set)

    @classmethod
    def from_proto_dir(cls, proto_dir: Path) -> TopicCatalog:
        """Compile every ``.proto`` under ``proto_dir`` (its root is the import root)."""
        return cls.from_file_set(compile_proto_dir(proto_dir))


def compile_proto_dir(proto_dir: Path) -> descriptor_pb2.FileDescriptorSet:
    """All ``.proto`` files under ``proto_dir`` as one descriptor set, imports included."""
    root = Path(proto_dir)
    if not root.is_dir():
        raise ProtoError(f"proto directory {root} does not exist")
    sources = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.proto"))
    if not sources:
        raise ProtoError(f"no .proto files under {root}")
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise ProtoError(
            "reading proto/ needs grpcio-tools (pip install grpcio-tools), "
            "or pass a descriptor set made by `buf build -o`"
        ) from exc
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="courier-contract-") as tmp:
        out = Path(tmp) / "set.binpb"
        errors = Path(tmp) / "protoc.err"
        args = [
            "protoc",
            f"-I{root}",
            f"-I{well_known}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *sources,
        ]
        with _stderr_to(errors):
            status = protoc.main(args)
        if status != 0:
            detail = errors.read_text(errors="replace").strip().splitlines()
            first = detail[0] if detail else f"protoc exited with {status}"
            first = first.replace(f"{root}/", "")  # protoc names files by their full path
            raise ProtoError(f"cannot compile {root}: {first}")
        file_set = descriptor_pb2.FileDescriptorSet()
        file_set.ParseFromString(out.read_bytes())
        return file_set


class _stderr_to:
    """Send file descriptor 2 to a file while protoc (C++) writes its errors there."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._saved = -1

    def __enter__(self) -> None:
        self._saved = os.dup(2)
        target = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, 2)
        os.close(target)

    def __exit__(self, *exc_info: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


def _topic_option_number(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> int | None:
    package, _, name = TOPIC_OPTION.rpartition(".")
    for proto in files:
        if proto.package != package:
            continue
        for extension in proto.extension:
            if extension.name == name and extension.extendee == _MESSAGE_OPTIONS:
                return int(extension.number)
    return None


def _messages(
    scope: str, messages: Iterable[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for message in messages:
        full_name = f"{scope}.{message.name}" if scope else message.name
        yield full_name, message
        yield from _messages(full_name, message.nested_type)


def _string_field(data: bytes, number: int) -> str | None:
    """The last string value of field ``number`` in serialized message ``data`` (wire format)."""
    found: str | None = None
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        field_number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == 2:
            length, position = _varint(data, position)
            if field_number == number:
                found = data[position : position + length].decode("utf-8", errors="replace")
            position += length
        else:  # groups: descriptor options never use them
            return found
    return found


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
