"""Find generated message classes by their full protobuf name, and read Courier's options.

Generated modules register their messages in protobuf's default descriptor pool when
imported. `message_class` imports them on demand: the proto package of a type name is
also the Python package of its generated code (buf's PACKAGE_DIRECTORY_MATCH rule keeps
the two equal), so ``packages.v1.PackageDelivered`` is looked for in the ``*_pb2``
modules of the Python package ``packages.v1``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import cast

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from courier.schemas._layout import DEFAULT_PYTHON_OUT
from courier.v1 import options_pb2

MessageLike = Message | type[Message] | Descriptor


def message_class(type_name: str) -> type[Message] | None:
    """The generated class of the message called ``type_name``, or None if none is known.

    >>> message_class("packages.v1.PackageDelivered")
    <class 'packages.v1.events_pb2.PackageDelivered'>
    """
    descriptor = message_descriptor(type_name)
    return None if descriptor is None else message_factory.GetMessageClass(descriptor)


def message_descriptor(type_name: str) -> Descriptor | None:
    """The descriptor of the message called ``type_name``, importing its code if needed."""
    found = _find(type_name)
    if found is None:
        _import_package_of(type_name)
        found = _find(type_name)
    return found


def topic_of(message: MessageLike) -> str | None:
    """The Kafka topic named by the message's ``(courier.v1.topic)`` option, if set."""
    options = _descriptor(message).GetOptions()
    return options.Extensions[options_pb2.topic] or None


def key_field_of(message: MessageLike) -> str | None:
    """The dotted field path named by the ``(courier.v1.key_field)`` option, if set."""
    options = _descriptor(message).GetOptions()
    return options.Extensions[options_pb2.key_field] or None


def key_of(message: Message) -> str | None:
    """The Kafka key of an event: the value at its ``key_field`` path, as text.

    None when the message names no key field or the value is empty.

    >>> key_of(PackageDelivered(package=Package(id="p-1")))
    'p-1'
    """
    path = key_field_of(message)
    if path is None:
        return None
    value: object = message
    for name in path.split("."):
        value = getattr(value, name)
    return str(value) if value not in ("", None) else None


def import_generated_modules(roots: Iterable[Path] | None = None) -> list[ModuleType]:
    """Import every ``*_pb2`` module under ``roots`` (each a directory on ``sys.path``).

    Defaults to the checkout's ``gen/python``. Courier's own ``courier.v1`` is always
    loaded. Returns the modules, so their messages are in the default pool afterwards.
    """
    modules = [options_pb2]
    for root in [DEFAULT_PYTHON_OUT] if roots is None else roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*_pb2.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules.append(importlib.import_module(name))
    return modules


def events_by_topic(modules: Iterable[ModuleType] | None = None) -> dict[str, list[str]]:
    """Topic -> full names of the messages whose ``(courier.v1.topic)`` names it.

    Looks at the given generated modules, or at all of `import_generated_modules`.
    """
    found: dict[str, list[str]] = {}
    for module in import_generated_modules() if modules is None else modules:
        file = getattr(module, "DESCRIPTOR", None)
        if file is None:
            continue
        for descriptor in _all_messages(file.message_types_by_name.values()):
            if topic := topic_of(descriptor):
                found.setdefault(topic, []).append(descriptor.full_name)
    return {topic: sorted(names) for topic, names in sorted(found.items())}


def _all_messages(descriptors: Iterable[Descriptor]) -> Iterable[Descriptor]:
    for descriptor in descriptors:
        yield descriptor
        yield from _all_messages(descriptor.nested_types)


def _descriptor(message: MessageLike) -> Descriptor:
    if isinstance(message, Descriptor):
        return message
    # The C (upb) descriptor behaves as the Python one; the stubs type them apart.
    return cast(Descriptor, message.DESCRIPTOR)


def _find(type_name: str) -> Descriptor | None:
    try:
        return descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return None


def _import_package_of(type_name: str) -> None:
    # The longest importable prefix that holds *_pb2 modules is the proto package;
    # shorter prefixes only matter for nested messages (packages.v1.Outer.Inner).
    parts = type_name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        try:
            package = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        search_path = getattr(package, "__path__", None)
        if search_path is None:
            continue
        generated = [m.name for m in pkgutil.iter_modules(search_path) if m.name.endswith("_pb2")]
        for name in generated:
            importlib.import_module(f"{package.__name__}.{name}")
        if generated:
            return
