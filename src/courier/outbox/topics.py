"""Which Kafka topic (and key) an event goes to when ``build_event`` is not told.

The rule, in order:

1. an explicit ``topic=`` argument;
2. the message's ``(courier.v1.topic)`` option, when the message's proto sets it::

       message PackageDelivered {
         option (courier.v1.topic) = "packages.delivered";
       }

3. otherwise the message's full name with the message part in snake case: the proto package
   stays, each (nested) message name becomes lower snake case::

       packages.v1.PackageDelivered      -> packages.v1.package_delivered
       billing.v2.Invoice.LineAdded      -> billing.v2.invoice.line_added
       acme.HTTPRequestSent              -> acme.http_request_sent

The key, when not passed, comes from the ``(courier.v1.key_field)`` option: the dotted path
of a scalar field (``"package.id"``); an unset (empty) string field means no key.

Kafka topic names allow ``[A-Za-z0-9._-]`` up to 249 characters; a derived name always fits
the alphabet, and the length is checked.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

TOPIC_OPTION = "courier.v1.topic"
KEY_FIELD_OPTION = "courier.v1.key_field"
_OPTIONS_MODULES = ("courier.v1.options_pb2",)
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_options_loaded = False


class InvalidTopic(ValueError):
    """A topic name that Kafka would refuse (empty, too long, or outside ``[A-Za-z0-9._-]``)."""


def check_topic(topic: str) -> str:
    """Return ``topic`` if Kafka accepts it as a topic name, else raise :class:`InvalidTopic`."""
    if not _TOPIC.match(topic) or topic in (".", ".."):
        raise InvalidTopic(
            f"invalid Kafka topic {topic!r}: use 1-249 characters from [A-Za-z0-9._-]"
        )
    return topic


def snake_case(name: str) -> str:
    """``PackageDelivered`` -> ``package_delivered``, ``HTTPSent`` -> ``http_sent``."""
    return _WORD_BOUNDARY.sub("_", name).lower()


def topic_from_full_name(full_name: str, package: str) -> str:
    """Rule 3: the package kept, every message name in the rest snake-cased."""
    if package and full_name.startswith(package + "."):
        rest = full_name[len(package) + 1 :]
        prefix = [package]
    else:
        rest = full_name
        prefix = []
    return ".".join([*prefix, *(snake_case(part) for part in rest.split("."))])


def message_option(descriptor: Any, full_name: str) -> str | None:
    """A string message option such as ``courier.v1.topic``, or None when unset or unknown."""
    _load_options_module()
    try:
        options = descriptor.GetOptions()
    except Exception:  # a descriptor without options support: nothing to read
        return None
    for field, value in options.ListFields():
        if field.is_extension and field.full_name == full_name and value:
            return str(value)
    return None


def option_topic(descriptor: Any) -> str | None:
    """Rule 2: the ``(courier.v1.topic)`` message option, or None."""
    return message_option(descriptor, TOPIC_OPTION)


def key_from_message(message: Any) -> str | None:
    """The key named by ``(courier.v1.key_field)``, read from ``message``; None without it.

    Raises ValueError when the option names a field the message does not have.
    """
    path = message_option(message.DESCRIPTOR, KEY_FIELD_OPTION)
    if not path:
        return None
    value: Any = message
    for part in path.split("."):
        if part not in value.DESCRIPTOR.fields_by_name:
            raise ValueError(
                f"(courier.v1.key_field) = {path!r} on {message.DESCRIPTOR.full_name}: "
                f"no field {part!r}"
            )
        value = getattr(value, part)
    if hasattr(value, "DESCRIPTOR"):
        raise ValueError(f"(courier.v1.key_field) = {path!r} names a message, not a scalar")
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text or None


def topic_for(descriptor: Any, explicit: str | None = None) -> str:
    """The topic for a message type, by the rule above."""
    if explicit is not None:
        return check_topic(explicit)
    from_option = option_topic(descriptor)
    if from_option:
        return check_topic(from_option)
    return check_topic(topic_from_full_name(descriptor.full_name, descriptor.file.package))


def _load_options_module() -> None:
    # The extension must be registered before options are parsed; importing a message's
    # generated module usually does it, importing Courier's options module makes sure.
    global _options_loaded
    if _options_loaded:
        return
    _options_loaded = True
    for name in _OPTIONS_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
