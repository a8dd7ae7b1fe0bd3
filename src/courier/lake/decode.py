"""Payload bytes -> JSON text, through protobuf descriptors; never an exception.

The message type comes from the event's ``ce_type`` (the full protobuf name). It is looked
up, in order:

1. in a descriptor pool built from ``--descriptor-set`` files (``buf build -o x.binpb``),
   for types whose generated code the sink does not have;
2. in the generated code, through :func:`courier.schemas.message_class` (``gen/python``,
   ``courier.v1``, the well-known ``google.protobuf`` types).

``ce_type`` comes from a Kafka header, so it is untrusted: ``message_class`` imports the
Python package named by a type, and the decoder only lets it do that for packages under a
known root (``google``, ``courier``, the roots of the generated code, and any given
``proto_roots``); any other name is simply an unknown type.

JSON follows protobuf's canonical JSON mapping with the ``.proto`` field names
(``received_by``, not ``receivedBy``), fields at their default values printed, and enums
by name; 64-bit integers are JSON strings, as the mapping says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

MessageResolver = Callable[[str], "type[Message] | None"]

_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
BASE_PROTO_ROOTS = frozenset({"google", "courier"})


@dataclass(frozen=True)
class Decoded:
    """The JSON text of a payload, or the reason there is none."""

    json: str | None
    error: str | None = None


class PayloadDecoder:
    """Decodes payloads by type name, caching the class (or the absence of one) per type.

    >>> decoder = PayloadDecoder.for_generated_code()
    >>> decoder.decode("google.protobuf.Duration", b"\\x08\\x05").json
    '"5s"'
    """

    def __init__(
        self,
        resolvers: Iterable[tuple[MessageResolver, DescriptorPool | None]],
    ) -> None:
        self._resolvers = list(resolvers)
        self._found: dict[str, tuple[type[Message], DescriptorPool | None] | None] = {}

    @classmethod
    def for_generated_code(
        cls,
        descriptor_sets: Iterable[Path] = (),
        proto_roots: Iterable[str] = (),
    ) -> PayloadDecoder:
        """The sink's decoder: descriptor-set files first, then the generated code."""
        resolvers: list[tuple[MessageResolver, DescriptorPool | None]] = []
        for path in descriptor_sets:
            pool = pool_from_descriptor_set(path.read_bytes())
            resolvers.append((resolver_for_pool(pool), pool))
        resolvers.append((_guarded_message_class(frozenset(proto_roots)), None))
        return cls(resolvers)

    @classmethod
    def for_pool(cls, pool: DescriptorPool) -> PayloadDecoder:
        """A decoder that knows exactly the messages of ``pool``."""
        return cls([(resolver_for_pool(pool), pool)])

    def decode(self, type_name: str | None, payload: bytes | None) -> Decoded:
        """``payload`` as JSON text; ``Decoded(None, reason)`` when it cannot be decoded."""
        if type_name is None or payload is None:
            return Decoded(None, "no type" if type_name is None else "no payload")
        found = self._lookup(type_name)
        if found is None:
            return Decoded(None, f"unknown type {type_name!r}")
        message_type, pool = found
        try:
            message = message_type()
            message.ParseFromString(payload)
            text = json_format.MessageToJson(
                message,
                preserving_proto_field_name=True,
                indent=None,
                always_print_fields_with_no_presence=True,
                descriptor_pool=pool,
            )
        except Exception as exc:  # a corrupt payload is data, not a reason to stop the sink
            return Decoded(None, f"cannot decode as {type_name}: {type(exc).__name__}: {exc}")
        return Decoded(text)

    def _lookup(self, type_name: str) -> tuple[type[Message], DescriptorPool | None] | None:
        if type_name in self._found:
            return self._found[type_name]
        found: tuple[type[Message], DescriptorPool | None] | None = None
        if _TYPE_NAME.match(type_name):
            for resolve, pool in self._resolvers:
                try:
                    message_type = resolve(type_name)
                except Exception:  # a broken generated module must not stop the sink
                    message_type = None
                if message_type is not None:
                    found = (message_type, pool)
                    break
        if len(self._found) < 10_000:  # bounded: type names come from record headers
            self._found[type_name] = found
        return found


def pool_from_descriptor_set(data: bytes) -> DescriptorPool:
    """A descriptor pool holding every file of a serialized ``FileDescriptorSet``.

    Files are added dependencies first, whatever their order in the set.
    """
    file_set = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in file_set.file}
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added or name not in pending:
            return
        added.add(name)
        for dependency in pending[name].dependency:
            add(dependency)
        pool.Add(pending[name])

    for name in list(pending):
        add(name)
    return pool


def resolver_for_pool(pool: DescriptorPool) -> MessageResolver:
    """Look a message class up in ``pool`` (None when the pool does not know the name)."""

    def resolve(type_name: str) -> type[Message] | None:
        try:
            descriptor = pool.FindMessageTypeByName(type_name)
        except KeyError:
            return None
        return message_factory.GetMessageClass(descriptor)

    return resolve


def _guarded_message_class(extra_roots: frozenset[str]) -> MessageResolver:
    from courier.schemas import import_generated_modules, message_class

    roots = set(BASE_PROTO_ROOTS | extra_roots)
    for module in import_generated_modules():
        roots.add(module.__name__.split(".", 1)[0])

    def resolve(type_name: str) -> type[Message] | None:
        if type_name.split(".", 1)[0] not in roots:
            return None
        return message_class(type_name)

    return resolve
