"""Field types of the broker configuration: each parses one YAML value or says why not.

Every validator raises :func:`config_error` with a message meant for a person ("must be an
integer port 1-65535, got \"abc\""); the loader puts the key path and line in front of it.
Durations accept a number of seconds or a string such as ``"250ms"``, ``"2s"``, ``"1m"``,
``"1h"`` or ``"1m30s"``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

CONFIG_ERROR = "courier_config"

MAX_TOPIC_LENGTH = 249
_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
SERVICE_NAME = re.compile(rf"{_IDENT}(?:\.{_IDENT})*")
METHOD_NAME = re.compile(_IDENT)
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h)")
_DURATION = re.compile(rf"\s*(?:{_NUMBER}\s*(?:ms|s|m|h)\s*)+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

DURATION_HINT = 'a duration (seconds as a number, or a string like "250ms", "2s", "1m")'


def config_error(message: str) -> NoReturn:
    """Raise a validation error whose text is exactly ``message``."""
    # The message travels in the context: a template would treat "{" in it as a placeholder.
    raise PydanticCustomError(CONFIG_ERROR, "{message}", {"message": message})


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, short enough for one line."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '..."'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def integer(
    minimum: int, maximum: int | None = None, what: str | None = None
) -> Callable[[Any], int]:
    """An int check (digit strings accepted, as the article quotes its port) within bounds."""
    if what is None:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def check(value: Any) -> int:
        number = _as_int(value)
        if number is None or number < minimum or (maximum is not None and number > maximum):
            config_error(f"must be {what}, got {show(value)}")
        return number

    return check


def parse_duration(value: Any) -> float:
    """Seconds from a number or a duration string; ValueError when it is neither.

    >>> parse_duration("1m30s"), parse_duration("250ms"), parse_duration(2)
    (90.0, 0.25, 2.0)
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(rf"\s*{_NUMBER}\s*", value)
    ):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        seconds = sum(
            float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(value)
        )
    else:
        raise ValueError(value)
    if not math.isfinite(seconds):
        raise ValueError(value)
    return seconds


def format_duration(seconds: float) -> str:
    """A duration the way :func:`parse_duration` reads it back exactly (``"1.5s"``)."""
    return f"{seconds!r}s"


def duration(*, positive: bool) -> Callable[[Any], float]:
    """A duration check in seconds; ``positive`` forbids zero."""

    def check(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            config_error(f"must be {DURATION_HINT}, got {show(value)}")
        if seconds < 0 or (positive and seconds == 0):
            bound = "greater than 0" if positive else "0 or more"
            config_error(f"must be a duration {bound}, got {show(value)}")
        return seconds

    return check


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        config_error(f"must be a number from 0 to 1, got {show(value)}")
    try:
        number = float(value)
    except ValueError:
        config_error(f"must be a number from 0 to 1, got {show(value)}")
    if not 0 <= number <= 1:
        config_error(f"must be a number from 0 to 1, got {show(value)}")
    return number


def _text(value: Any, what: str = "a string") -> str:
    if not isinstance(value, str):
        quoted = f' (quote it: "{value}")' if isinstance(value, int | float | bool) else ""
        config_error(f"must be {what}, got {show(value)}{quoted}")
    return value


def _non_empty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        config_error("must not be empty")
    return text


def topic_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Kafka topic name, or None if it is."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return 'must not be "." or ".."'
    if len(name) > MAX_TOPIC_LENGTH:
        return f"must be at most {MAX_TOPIC_LENGTH} characters, got {len(name)}"
    if not _TOPIC.fullmatch(name):
        return f"may use only letters, digits, '.', '_' and '-', got {show(name)}"
    if name.startswith("__"):
        return f'must not start with "__" (reserved for Kafka\'s internal topics), got {show(name)}'
    return None


def _topic(value: Any) -> str:
    name = _text(value, "a Kafka topic name")
    problem = topic_problem(name)
    if problem:
        config_error(f"Kafka topic name {problem}")
    return name


def _hostname(value: Any) -> str:
    host = _text(value, "a hostname or IP address").strip()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host.strip("[]")
    except ValueError:
        pass
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        hint = " (give the port in grpc-server-port)" if ":" in host else ""
        config_error(f"must be a hostname or IP address, got {show(value)}{hint}")
    return host


def _service_name(value: Any) -> str:
    name = _text(value, 'a gRPC service name like "package.v1.Service"')
    if not SERVICE_NAME.fullmatch(name):
        config_error(f'must be a gRPC service name like "package.v1.Service", got {show(value)}')
    return name


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    config_error(f"must be true or false, got {show(value)}")


def _ordering(value: Any) -> str:
    if value not in ("none", "key"):
        config_error(f'must be "none" or "key", got {show(value)}')
    return str(value)


def _non_empty_list(what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            config_error(f"must be a list of {what}, got {show(value)}")
        if not value:
            config_error(f"must not be empty: list one or more {what}")
        return value

    return check


def _existing_file(value: Any, info: ValidationInfo) -> Path:
    text = _text(value, "a file path")
    path = Path(os.path.expanduser(text))
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if not path.is_file():
        where = (
            f" (relative to {base})" if base is not None and not Path(text).is_absolute() else ""
        )
        config_error(f"file not found: {show(text)}{where}")
    if not os.access(path, os.R_OK):
        config_error(f"file is not readable: {show(str(path))}")
    return path


Port = Annotated[int, BeforeValidator(integer(1, 65535, "an integer port 1-65535"))]
PositiveInt = Annotated[int, BeforeValidator(integer(1))]
NonNegativeInt = Annotated[int, BeforeValidator(integer(0))]
Seconds = Annotated[float, BeforeValidator(duration(positive=False))]
PositiveSeconds = Annotated[float, BeforeValidator(duration(positive=True))]
Fraction = Annotated[float, BeforeValidator(_fraction)]
TopicName = Annotated[str, BeforeValidator(_topic)]
Hostname = Annotated[str, BeforeValidator(_hostname)]
ServiceName = Annotated[str, BeforeValidator(_service_name)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Ordering = Annotated[Literal["none", "key"], BeforeValidator(_ordering)]
NonEmptyText = Annotated[str, BeforeValidator(_non_empty_text)]
ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]
DelayList = Annotated[tuple[Seconds, ...], BeforeValidator(_non_empty_list("durations"))]


def list_of(what: str) -> BeforeValidator:
    """A before-validator requiring a non-empty list (of ``what``)."""
    return BeforeValidator(_non_empty_list(what))
